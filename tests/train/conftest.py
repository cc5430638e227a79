import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
PLACES = ("left", "right")


def write_dataset(root: Path, n_train: int = 48, n_val: int = 16, side: int = 32) -> Path:
    """A tiny learnable image-caption set: a coloured square on the left or right half."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        with open(root / f"{split}.jsonl", "w") as manifest:
            for i in range(n):
                colour = list(COLOURS)[i % len(COLOURS)]
                place = PLACES[(i // len(COLOURS)) % 2]
                pixels = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
                x0 = 2 if place == "left" else side // 2 + 2
                pixels[8:24, x0:x0 + side // 2 - 4] = COLOURS[colour]
                name = f"{split}_{i:04d}.png"
                Image.fromarray(pixels).save(root / name)
                manifest.write(json.dumps({"image": name, "caption": f"a {colour} square on the {place}"}) + "\n")
    return root


TINY_OVERRIDES = [
    "data.image_size=32", "data.max_text_len=16", "data.num_workers=0",
    "model.image_size=32", "model.image_patch_size=8", "model.image_depth=2", "model.max_text_len=16",
    "model.hidden_dim=64", "model.num_heads=4", "model.embed_dim=32",
    "train.batch_size=8", "train.log_every=1", "train.eval_samples=16", "train.trackers=[]",
    "train.warmup_steps=2",
]


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def join_gloo(rank: int, world: int, port: int):
    """This worker's part of a CPU process group; returns the product's DistEnv for it."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from mmscale.train.distributed import init_distributed

    return init_distributed("cpu")
