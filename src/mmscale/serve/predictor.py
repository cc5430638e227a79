"""``predict(task, items)``: one batched forward for many requests, with per-request errors.

A ``/v1/match`` request holds one image and K captions; a batch of B requests with K_1..K_B
captions runs the image encoder on B images, the text encoder on C = sum(K_i) captions, and the
fusion/ITM head on C (image, caption) pairs, each caption paired with its own image by an index
(``owner``). Requests with different K therefore share one forward and still get exactly the
scores they would get alone (tests/serve/test_predictor.py checks batched == unbatched).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
import torch

from mmscale.data.gpu_decode import decode_jpegs, resize_to_square
from mmscale.data.gpu_raw import is_jpeg
from mmscale.data.image import SampleSkip, decode_image
from mmscale.data.normalize import to_model_input
from mmscale.errors import ConfigError
from mmscale.serve.buckets import bucket_at_most, buckets_up_to, next_bucket
from mmscale.serve.cuda_graphs import GraphedForward, capture_all, cuda_capture, example_inputs, graph_shapes
from mmscale.serve.items import Item, Output, RequestError

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class ImageBatchDecoder:
    """Encoded images -> uint8 [n, 3, S, S] on the model's device, plus a 400 for each bad one.

    ``decode`` names the path as ``data.decode`` does:
    ``gpu``: one batched nvjpeg call for the JPEGs (``gpu_decode.decode_jpegs``: TorchCodec, or
    torchvision where TorchCodec is not installed) and a GPU resize; non-JPEGs and anything nvjpeg refuses go through the CPU decoder.
    ``cpu``: PIL with reduced-scale JPEG decode (``mmscale.data.image``).
    """

    def __init__(self, image_size: int, max_image_pixels: int, device: torch.device, decode: str):
        if decode not in ("cpu", "gpu"):
            raise ValueError(f"decode must be cpu or gpu, got {decode!r}")
        self.image_size, self.max_image_pixels, self.device, self.decode = image_size, max_image_pixels, device, decode

    def cpu_one(self, data: bytes) -> torch.Tensor | RequestError:
        try:
            return decode_image(data, self.image_size, self.max_image_pixels)
        except SampleSkip as exc:
            return RequestError(400, "bad_image", f"image cannot be decoded ({exc.reason.value})")

    def __call__(self, blobs: list[bytes]) -> tuple[torch.Tensor | None, list[RequestError | None]]:
        decoded: list[torch.Tensor | RequestError | None] = [None] * len(blobs)
        if self.decode == "gpu":
            jpeg_slots = [k for k, b in enumerate(blobs) if is_jpeg(b)]
            tensors = [torch.frombuffer(bytearray(blobs[k]), dtype=torch.uint8) for k in jpeg_slots]
            images = decode_jpegs(tensors, self.device)  # one batched nvjpeg call
            done = [(k, img) for k, img in zip(jpeg_slots, images) if img is not None]
            if done:
                resized = resize_to_square([img for _, img in done], self.image_size)  # (n, 3, S, S)
                for (k, _), img in zip(done, resized):
                    decoded[k] = img
        for k, blob in enumerate(blobs):
            if decoded[k] is None:
                decoded[k] = self.cpu_one(blob)
        errors = [d if isinstance(d, RequestError) else None for d in decoded]
        good = [d.to(self.device, non_blocking=True) for d in decoded if not isinstance(d, RequestError)]
        return (torch.stack(good) if good else None), errors


def match_forward(model, pixels, ids, mask, owner) -> tuple[torch.Tensor, torch.Tensor]:
    """pixels (B, 3, S, S), captions (C, L), owner (C,) image index per caption -> ITM prob, ITC sim (C,)."""
    image_tokens = model.encode_image(pixels)  # (B, Ni, Di)
    text_tokens = model.encode_text(ids, mask)  # (C, L, Dt)
    image_emb = model.embed_image_tokens(image_tokens)[owner]  # (C, E)
    text_emb = model.embed_text_tokens(text_tokens)  # (C, E)
    logits = model.itm_logits(model.itm_queries(image_tokens)[owner], text_tokens, mask)  # (C, 2)
    return logits.float().softmax(-1)[:, 1], (image_emb.float() * text_emb.float()).sum(-1)


def image_forward(model, pixels) -> torch.Tensor:
    return model.image_embedding(pixels).float()  # (B, E)


def text_forward(model, ids, mask) -> torch.Tensor:
    return model.text_embedding(ids, mask).float()  # (C, E)


class ModelPredictor:
    """Runs ``MultimodalModel`` for the server's three tasks; safe to call from several threads."""

    def __init__(self, model, tokenizer, *, max_text_len: int, max_image_pixels: int,
                 device: str = "auto", cuda_graphs: bool = False, max_graph_batch: int = 64):
        self.device = resolve_device(device)
        if cuda_graphs and self.device.type != "cuda":
            raise ConfigError("serve.cuda_graphs", f"needs a CUDA device (the server runs on {self.device}); "
                                                   "drop --cuda-graphs on CPU")
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model = model.to(self.device, self.dtype).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.tokenizer_lock = threading.Lock()  # the tokenizer's padding mode is shared state
        self.image_size = model.cfg.image_size
        self.max_text_len = min(max_text_len, model.cfg.max_text_len)
        decode = "gpu" if self.device.type == "cuda" else "cpu"
        self.decode_images = ImageBatchDecoder(self.image_size, max_image_pixels, self.device, decode)
        # Fixed shapes on CUDA: batches padded to buckets, captions to max_text_len, every
        # bucket warmed at start (``warm_buckets``).
        self.pad_buckets = self.device.type == "cuda"
        self.cuda_graphs, self.max_graph_batch = cuda_graphs, max_graph_batch
        self.forwards = {"match": match_forward, "embed_image": image_forward, "embed_text": text_forward}

    # --- pieces ------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        with self.tokenizer_lock:
            ids, mask = self.tokenizer.encode_batch(texts, max_len=self.max_text_len,
                                                    pad_to_longest=not self.pad_buckets)
        return self.pad_caption_rows(ids, mask)

    def caption_tensors(self, items: list[Item]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask) (Cp, L) for the captions of ``items``: from their ``token_ids`` when a front
        end tokenized them, else tokenized here."""
        if not items or any(it.token_ids is None for it in items):
            return self.tokenize([c for it in items for c in it.captions])
        rows = [r[: self.max_text_len] for it in items for r in it.token_ids]
        lengths = np.array([len(r) for r in rows])
        length = self.max_text_len if self.pad_buckets else int(lengths.max())
        ids = np.full((len(rows), length), self.tokenizer.pad_id, dtype=np.int64)  # (C, L)
        for k, row in enumerate(rows):  # numpy slice assignment: ~1 us a row on the inference thread
            ids[k, : len(row)] = row
        mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
        return self.pad_caption_rows(torch.from_numpy(ids), torch.from_numpy(mask))

    def pad_caption_rows(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = len(ids)
        rows = next_bucket(count) if self.pad_buckets else count
        if rows > count:  # pad rows: [CLS] [SEP] with a non-empty mask (an all-masked row would be NaN)
            pad_ids = torch.full((rows - count, ids.shape[1]), self.tokenizer.pad_id, dtype=ids.dtype)
            pad_mask = torch.zeros_like(pad_ids)
            pad_ids[:, 0], pad_mask[:, 0] = self.tokenizer.cls_id, 1
            ids, mask = torch.cat([ids, pad_ids]), torch.cat([mask, pad_mask])
        return ids.to(self.device, non_blocking=True), mask.to(self.device, non_blocking=True)

    def pixels(self, images_uint8: torch.Tensor) -> torch.Tensor:
        rows = next_bucket(len(images_uint8)) if self.pad_buckets else len(images_uint8)
        if rows > len(images_uint8):
            pad = images_uint8.new_zeros((rows - len(images_uint8), *images_uint8.shape[1:]))
            images_uint8 = torch.cat([images_uint8, pad])
        return to_model_input(images_uint8, self.device, self.dtype)  # (B, 3, S, S)

    @torch.inference_mode()
    def warm_buckets(self, max_batch: int, max_captions: int) -> int:
        """Run every bucket shape once so no request pays a first-shape cost; returns shapes run."""
        if not self.pad_buckets:
            return 0
        side, length = self.image_size, self.max_text_len
        image_buckets = buckets_up_to(max_batch)
        text_buckets = buckets_up_to(max_batch * max_captions)
        for rows in text_buckets:
            images = min(rows, image_buckets[-1])
            pixels = torch.zeros(images, 3, side, side, device=self.device, dtype=self.dtype)
            ids = torch.full((rows, length), self.tokenizer.cls_id, device=self.device)
            mask = torch.ones_like(ids)
            owner = torch.zeros(rows, dtype=torch.int64, device=self.device)
            self.forwards["match"](self.model, pixels, ids, mask, owner)
            self.forwards["embed_text"](self.model, ids, mask)
            if rows in image_buckets:
                self.forwards["embed_image"](self.model, pixels)
        if self.cuda_graphs:
            self.use_graphs(cuda_capture(torch.cuda.graph_pool_handle()), max_batch, max_captions)
        if self.device.type == "cuda":
            torch.cuda.synchronize()  # host sync: start-up only
        return len(text_buckets)

    @torch.inference_mode()
    def use_graphs(self, capture, max_batch: int, max_captions: int) -> int:
        """Wrap each task's forward in a ``GraphedForward`` and capture every small-batch shape
        (``cuda_graphs.graph_shapes``); ``capture`` is ``cuda_capture`` on CUDA, a fake in CPU tests.
        Returns the number of graphs recorded."""
        self.pad_buckets = True  # graphs exist for bucket shapes only
        self.forwards = {task: fn if isinstance(fn, GraphedForward) else GraphedForward(fn, self.model, capture)
                         for task, fn in self.forwards.items()}
        shapes = graph_shapes(self.max_graph_batch, max_batch, max_captions)

        def make_inputs(task, rows):
            return example_inputs(task, rows, self.image_size, self.max_text_len, self.tokenizer.cls_id,
                                  self.device, self.dtype)

        recorded = capture_all(self.forwards, shapes, make_inputs)
        wanted = sum(len(v) for v in shapes.values())
        log.info("CUDA graphs: recorded %d of %d small-batch shapes (batches up to %d)",
                 recorded, wanted, self.max_graph_batch)
        return recorded

    def batch_size_for(self, ready: int, above: int) -> int:
        """How many of ``ready`` queued requests one batch takes: all of them up to ``above``,
        beyond it the largest bucket that fits (64 of 69 rather than 69 padded to 96). Small
        batches cost about the same whatever their size, so cutting them would only delay the
        rest; large ones are compute-bound and every padded row costs. Without padding: all."""
        if not self.pad_buckets or ready <= above:
            return ready
        return bucket_at_most(ready)

    # --- tasks: prepare (decode, tokenize, copy) then execute (forward) ------------------------
    @torch.inference_mode()
    def predict(self, task: str, items: list[Item]) -> list[Output | RequestError]:
        """Decode and tokenize the batch, then run its forward; a bad request fails alone."""
        return self.execute(self.prepare_inputs(task, items))

    def captions_of(self, prepared: "PreparedBatch") -> tuple[torch.Tensor, torch.Tensor] | None:
        """(ids, mask) (Cp, L) of the good requests' captions. When the batch cannot be tokenized,
        each request that cannot gets its own 400 and leaves ``good``; None when none is left."""
        items, good = prepared.items, prepared.good
        try:
            return self.caption_tensors([items[k] for k in good])
        except Exception:  # the tokenizer refused something: find whose, fail only those
            for k in list(good):
                try:
                    self.caption_tensors([items[k]])
                except Exception as exc:
                    log.warning("a request's captions cannot be tokenized (%s: %s)", type(exc).__name__, exc)
                    prepared.outputs[k] = RequestError(400, "bad_request", "a caption cannot be tokenized")
                    good.remove(k)
        return self.caption_tensors([items[k] for k in good]) if good else None

    def prepare_inputs(self, task: str, items: list[Item]) -> "PreparedBatch":
        if task == "embed_text":
            prepared = PreparedBatch(task, items, [None] * len(items), list(range(len(items))), ())
            captions = self.captions_of(prepared)
            prepared.inputs = captions if captions is not None else ()
            return prepared
        images, errors = self.decode_images([it.image_bytes for it in items])
        good = [k for k, err in enumerate(errors) if err is None]
        prepared = PreparedBatch(task, items, list(errors), good, ())
        if not good:
            return prepared
        if task == "embed_image":
            prepared.inputs = (self.pixels(images),)  # (Bp, 3, S, S)
            return prepared
        decoded = list(good)  # images holds one row per decoded request, in this order
        captions = self.captions_of(prepared)  # may drop requests from good
        if captions is None:
            return prepared
        ids, mask = captions  # (Cp, L)
        if len(good) < len(decoded):
            images = images[[decoded.index(k) for k in good]]
        pixels = self.pixels(images)  # (Bp, 3, S, S)
        owner = [j for j, k in enumerate(good) for _ in items[k].captions]
        owner += [0] * (len(ids) - len(owner))  # padded caption rows pair with image 0
        prepared.inputs = (pixels, ids, mask, torch.tensor(owner).to(self.device, non_blocking=True))
        return prepared

    @torch.inference_mode()
    def execute(self, prepared: "PreparedBatch") -> list[Output | RequestError]:
        """The forward of a prepared batch and its results as per-request outputs."""
        outputs: list[Output | RequestError] = list(prepared.outputs)
        if not prepared.inputs:
            return outputs
        items, good = prepared.items, prepared.good
        if prepared.task == "embed_text":
            texts = sum(len(items[k].captions) for k in good)
            rows = self.forwards["embed_text"](self.model, *prepared.inputs)[:texts].cpu().tolist()  # host sync
            start = 0
            for k in good:
                outputs[k] = Output(embeddings=rows[start:start + len(items[k].captions)])
                start += len(items[k].captions)
            return outputs
        if prepared.task == "embed_image":
            rows = self.forwards["embed_image"](self.model, *prepared.inputs)[: len(good)].cpu().tolist()  # host sync
            for k, row in zip(good, rows):
                outputs[k] = Output(embeddings=[row])
            return outputs
        prob, sim = self.forwards["match"](self.model, *prepared.inputs)
        prob, sim = prob.cpu().tolist(), sim.cpu().tolist()  # host sync: results to the client
        start = 0
        for k in good:
            n = len(items[k].captions)
            outputs[k] = Output(itm_prob=prob[start:start + n], itc_similarity=sim[start:start + n])
            start += n
        return outputs


@dataclass
class PreparedBatch:
    """A batch between its two stages: per-request errors found while decoding, the indices of the
    requests that go on (``good``), and the forward's device inputs."""

    task: str
    items: list[Item]
    outputs: list  # RequestError for a request that failed to decode, else None until executed
    good: list[int]
    inputs: tuple
