"""One synthetic photo-like scene and the caption that describes it.

A scene is a textured, unevenly lit background with 1-4 shaded objects placed in distinct cells
of a 3x3 grid; the caption names every object's count, size, colour, shape and position, so
image-text matching is learnable and retrieval has a right answer. Everything is drawn from
``numpy.random.default_rng([seed, index])``: the same (seed, index) gives the same bytes, whatever
process renders it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

WIDTH, HEIGHT = 640, 480
JPEG_QUALITY = 90

COLOURS = {  # name -> RGB
    "red": (200, 30, 35), "green": (40, 160, 60), "blue": (35, 70, 200), "yellow": (235, 205, 40),
    "purple": (130, 50, 170), "orange": (240, 130, 30), "white": (240, 240, 235), "black": (25, 25, 30),
}
BACKGROUNDS = {  # name -> RGB of the dominant tone (objects never take a colour listed in CLASHES)
    "grey": (128, 128, 125), "sandy": (200, 180, 140), "sky blue": (120, 170, 215),
    "grassy green": (90, 140, 70), "dark": (45, 45, 55), "pink": (215, 160, 170),
}
CLASHES = {"grey": ("white",), "sandy": ("yellow", "orange"), "sky blue": ("blue",),
           "grassy green": ("green",), "dark": ("black",), "pink": ("red", "purple")}
SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")
COUNT_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}
TEMPLATES = ("{objects} on a {background} background", "a photo of {objects} on a {background} background",
             "{objects}, {background} textured background")


@dataclass
class SceneObject:
    shape: str
    colour: str
    large: bool
    row: int
    col: int

    @property
    def position(self) -> str:
        if (self.row, self.col) == (1, 1):
            return "in the center"
        if self.row == 1:
            return f"on the {COLS[self.col]}"
        if self.col == 1:
            return f"at the {ROWS[self.row]}"
        return f"at the {ROWS[self.row]} {COLS[self.col]}"


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)]
    if shape == "star":
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles)))
    if shape == "cross":
        a = r * 0.35
        return [(cx - a, cy - r), (cx + a, cy - r), (cx + a, cy - a), (cx + r, cy - a), (cx + r, cy + a),
                (cx + a, cy + a), (cx + a, cy + r), (cx - a, cy + r), (cx - a, cy + a), (cx - r, cy + a),
                (cx - r, cy - a), (cx - a, cy - a)]
    return None  # circle


def _background(rng: np.random.Generator, tone: tuple[int, int, int]) -> Image.Image:
    """Tone + low-frequency blotches + mid-frequency texture + lighting gradient, computed at a
    quarter of the resolution (a 640x480 float pipeline costs 4x more) and upscaled bicubically."""
    h, w = HEIGHT // 4, WIDTH // 4
    luma = np.asarray(Image.fromarray((rng.random((6, 8)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC),
                      np.float32)[..., None]  # (h, w, 1): blotches in brightness, not colour
    tint = np.asarray(Image.fromarray((rng.random((3, 4, 3)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC),
                      np.float32)  # (h, w, 3): a faint colour drift
    texture = rng.random((h, w, 1), dtype=np.float32) * 255
    img = np.asarray(tone, np.float32) + (luma - 127.5) * 0.45 + (tint - 127.5) * 0.12 + (texture - 127.5) * 0.12
    light = np.linspace(1.15, 0.8, h, dtype=np.float32)[:, None, None]  # lit from above
    light = light * np.linspace(0.92 + 0.16 * rng.random(), 1.05, w, dtype=np.float32)[None, :, None]
    small = Image.fromarray(np.clip(img * light, 0, 255).astype(np.uint8))
    return small.resize((WIDTH, HEIGHT), Image.BICUBIC)


_GRAIN: dict[int, Image.Image] = {}
GRAIN_LEVELS = 13  # sensor noise in [-6, +6] grey levels


def _grain(seed: int, rng: np.random.Generator) -> Image.Image:
    """A WIDTHxHEIGHT crop of a per-seed noise tile; the offset comes from the scene's rng."""
    if seed not in _GRAIN:
        tile_rng = np.random.default_rng([seed, 2**31])
        tile = tile_rng.integers(0, GRAIN_LEVELS, (HEIGHT + 128, WIDTH + 128, 1), dtype=np.uint8).repeat(3, axis=2)
        _GRAIN[seed] = Image.fromarray(tile)
    dx, dy = (int(v) for v in rng.integers(0, 128, 2))
    return _GRAIN[seed].crop((dx, dy, dx + WIDTH, dy + HEIGHT))


def _draw_object(canvas: Image.Image, obj: SceneObject, rng: np.random.Generator) -> None:
    cell_w, cell_h = WIDTH / 3, HEIGHT / 3
    r = (0.36 if obj.large else 0.2) * min(cell_w, cell_h) * (0.9 + 0.2 * rng.random())
    cx = cell_w * (obj.col + 0.5) + (rng.random() - 0.5) * (cell_w - 2 * r) * 0.8
    cy = cell_h * (obj.row + 0.5) + (rng.random() - 0.5) * (cell_h - 2 * r) * 0.8
    pad = int(r) + 12
    box = (int(cx) - pad, int(cy) - pad)
    size = 2 * pad
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    lc, poly = pad + (cx - int(cx)), _polygon(obj.shape, pad + (cx - int(cx)), pad + (cy - int(cy)), r)
    if poly is None:
        draw.ellipse((lc - r, pad - r, lc + r, pad + r), fill=255)
    else:
        draw.polygon(poly, fill=255)
    shadow = mask.filter(ImageFilter.GaussianBlur(4)).point(lambda v: v * 0.55)
    canvas.paste((15, 15, 20), (box[0] + 6, box[1] + 8), shadow)
    # Shading: brighter towards the upper left, as lit from there, with a little colour noise.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    shade = 1.25 - 0.55 * np.sqrt(xx * xx + yy * yy)
    rgb = np.asarray(COLOURS[obj.colour], np.float32) * shade[..., None]
    rgb += rng.normal(0, 5, (size, size, 1)).astype(np.float32)
    patch = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    canvas.paste(patch, box, mask.filter(ImageFilter.GaussianBlur(0.8)))


def plan_scene(rng: np.random.Generator) -> tuple[str, list[SceneObject]]:
    """Background name and objects (distinct grid cells, contrasting colours)."""
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    n_objects = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))
    cells = rng.permutation(9)[:n_objects]
    colours = [c for c in COLOURS if c not in CLASHES[background]]
    kinds = [(SHAPES[rng.integers(len(SHAPES))], colours[rng.integers(len(colours))])]
    if n_objects > 1 and rng.random() < 0.6:  # a second kind of object
        kinds.append((SHAPES[rng.integers(len(SHAPES))], colours[rng.integers(len(colours))]))
    objects = []
    for k, cell in enumerate(cells):
        shape, colour = kinds[0] if k == 0 or len(kinds) == 1 else kinds[int(rng.integers(2))]
        objects.append(SceneObject(shape, colour, bool(rng.random() < 0.5), int(cell) // 3, int(cell) % 3))
    return background, objects


def describe(background: str, objects: list[SceneObject], template: int) -> str:
    """Caption: groups of equal (colour, shape) with count, size (when one) and positions."""
    groups: dict[tuple[str, str], list[SceneObject]] = {}
    for obj in objects:
        groups.setdefault((obj.colour, obj.shape), []).append(obj)
    parts = []
    for (colour, shape), members in groups.items():
        count = len(members)
        noun = shape + ("es" if count > 1 and shape.endswith(("ss", "x")) else "s" if count > 1 else "")
        size = ("large " if members[0].large else "small ") if count == 1 else ""
        article = "an" if count == 1 and (size or colour)[0] in "aeiou" else COUNT_WORDS[count]
        where = " and ".join(m.position for m in members)
        parts.append(f"{article} {size}{colour} {noun} {where}")
    objects_text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return TEMPLATES[template].format(objects=objects_text, background=background)


def render_scene(seed: int, index: int) -> tuple[bytes, str]:
    """(JPEG bytes, caption) of scene ``index``; deterministic in (seed, index)."""
    rng = np.random.default_rng([seed, index])
    background, objects = plan_scene(rng)
    template = int(rng.integers(len(TEMPLATES)))
    canvas = _background(rng, BACKGROUNDS[background])
    for obj in objects:
        _draw_object(canvas, obj, rng)
    final = ImageChops.add(canvas, _grain(seed, rng), scale=1.0, offset=-(GRAIN_LEVELS // 2))
    buf = io.BytesIO()
    final.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue(), describe(background, objects, template)
