"""The training job's view of a data split: batches addressed by optimizer step, for resume.

The loader's permutation is a pure function of (seed, epoch), so the position after ``step``
optimizer steps is ``epoch = step // batches_per_epoch`` and ``start_sample = (step %
batches_per_epoch) * batch_size``: a resumed run reads exactly the batches the uninterrupted run
would have read. (WebDataset shards stream without an index and restart their epoch on resume.)
The same arithmetic lets ``decode=auto`` switch input paths mid-run (``use_decode`` then
``stream(step)``) without a sample lost or read twice.
"""

from __future__ import annotations

import torch

from mmscale.data.loader import build_loader
from mmscale.data.tokenizer import load_tokenizer
from mmscale.errors import ConfigError
from mmscale.model.config import VOCAB_SIZE


def load_job_tokenizer(job):
    tokenizer = load_tokenizer(job.data.tokenizer)
    if tokenizer.vocab_size > VOCAB_SIZE:
        raise ConfigError("data.tokenizer", f"{tokenizer.source} has {tokenizer.vocab_size} tokens; the model's "
                          f"embedding table holds {VOCAB_SIZE} (the BERT-uncased vocabulary)")
    return tokenizer


class SplitBatches:
    """One process's share of ``split`` in batches of ``batch_size`` samples.

    ``decode``: the input path to build (``cpu`` | ``gpu``); None resolves ``data.decode``.
    ``loader_factories``: path name -> a ``build_loader``-like callable, for paths that are not
    ``build_loader`` itself (tests stand in a slowed CPU loader for ``gpu``).
    ``endless``: build loaders whose one iteration runs epoch after epoch (training's ``stream``:
    no pause at epoch boundaries); leave False where ``epoch`` is read (evaluation).
    """

    def __init__(self, job, split: str, batch_size: int, tokenizer, env, device, drop_last: bool = True,
                 decode: str | None = None, loader_factories: dict | None = None, endless: bool = False):
        self.job, self.split, self.batch_size, self.tokenizer = job, split, batch_size, tokenizer
        self.endless = endless
        self.rank, self.world = (env.rank, env.world_size) if env is not None else (0, 1)
        self.device, self.drop_last = device, drop_last
        self.decode, self.loader_factories = decode, dict(loader_factories or {})
        self.loader = self._build(epoch=0, start_sample=0)
        self._fresh_at: int | None = 0  # the step the loader was built for, until it is iterated
        dataset = self.loader.opened.dataset
        self.indexed = self.loader.sampler is not None
        self.num_samples = len(dataset) if self.indexed else -1  # -1: streamed shards, unknown

    def _build(self, epoch: int, start_sample: int, reuse=None):
        factory = self.loader_factories.get(self.decode, build_loader)
        return factory(self.job.data, self.batch_size, self.tokenizer, device=self.device,
                       drop_last=self.drop_last, split=self.split, start_sample=start_sample,
                       epoch=epoch, rank=self.rank, world_size=self.world, decode=self.decode, reuse=reuse,
                       endless=self.endless)

    def use_decode(self, decode: str) -> None:
        """Later ``stream`` calls read through the ``decode`` path; the current loader's workers
        stop now. Only for indexed manifests: the position must be computable from the step."""
        if decode == self.decode:
            return
        if not self.indexed:
            raise ConfigError("data.decode", "switching input paths needs an indexed manifest, not shards")
        self.loader.close()
        self.decode = decode
        self._fresh_at = None  # the next stream builds the new path's loader at its start step

    @property
    def batches_per_epoch(self) -> int:
        per_rank = self.num_samples // self.world
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def stream(self, start_step: int = 0):
        """Batches forever (epoch after epoch), starting where ``start_step`` steps left off."""
        if self.indexed:
            per_epoch = self.batches_per_epoch
            if per_epoch == 0:
                raise ConfigError("train.batch_size", f"{self.batch_size * self.world} exceeds the "
                                  f"{self.num_samples} samples of split '{self.split}'")
            epoch, offset = divmod(start_step, per_epoch)
            if self._fresh_at != start_step:
                self.loader.close()
                self.loader = self._build(epoch, offset * self.batch_size, reuse=self.loader)
        self._fresh_at = None
        while True:
            produced = 0
            for batch in self._one_pass():
                produced += 1
                yield batch
            if not produced:
                raise ConfigError("data.path", f"split '{self.split}' yielded no batch of {self.batch_size}")

    def _one_pass(self):
        """Iterate the loader once without drawing from the global torch RNG.

        DataLoader draws its workers' base seed from the global generator when an epoch's
        iterator starts; a resumed run starts one mid-epoch where the uninterrupted run did not,
        which would shift every later hard-negative draw. Forking the RNG keeps the streams equal.
        """
        batches = iter(self.loader)
        with torch.random.fork_rng(devices=[]):
            first = next(batches, None)
        if first is None:
            return
        yield first
        yield from batches

    def epoch(self, epoch: int = 0):
        """One pass over the split (evaluation)."""
        self.loader.load_state_dict({"epoch": epoch, "sample_offset": 0})
        yield from self.loader
