"""Global contrastive negatives under torchrun: ITC over every process's rows, gradients to their owner.

open_clip's ``gather_features`` in its local-loss form: each process scores its own B pairs
against the rows of every process, so at 8 processes of 128 each image sees 1,023 negatives, as
one process with the whole batch would, not 127. ``torch.distributed.nn.functional.all_gather``
sends each rank's gradient of the gathered rows back to their owner in backward, and the DDP or
FSDP2 gradient average then equals the gradient of the whole batch's loss. ITM's hard negatives
stay each process's own (``MultimodalModel.forward``).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch.distributed.nn.functional import all_gather

from mmscale.model.losses import ContrastRows
from mmscale.train.distributed import DistEnv

# torch 2.14 marks this all_gather deprecated for _functional_collectives.all_gather_single_autograd,
# whose backward fails on gloo ("invalid python storage"); this one works on NCCL and gloo alike
warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_gather is deprecated",
                        category=FutureWarning)


class GatherContrastRows:
    """``MultimodalModel.gather_contrast_rows`` for one process of a torchrun job.

    ``rows``: the most pairs a process passes at once (the micro-batch). A batch shortened by bad
    samples is padded to it, and padding rows are never a negative, so the ranks' gathers keep one
    shape; a process may pass more only when every process passes as many (a benchmark's batch).
    """

    def __init__(self, rows: int, env: DistEnv):
        self.rows, self.rank = rows, env.rank

    def __call__(self, image_emb: torch.Tensor, text_emb: torch.Tensor) -> ContrastRows:
        batch, width = image_emb.shape
        rows = max(self.rows, batch)
        # one collective a step: (B, E) images | (B, E) texts | (B, 1) a 1 for each real row
        packed = torch.cat([image_emb, text_emb, image_emb.new_ones(batch, 1)], dim=1)
        packed = F.pad(packed, (0, 0, 0, rows - batch))  # (rows, 2E + 1)
        every = torch.cat(all_gather(packed))  # (world * rows, 2E + 1), rank r's rows at r * rows
        return ContrastRows(every[:, :width], every[:, width:2 * width], every[:, -1] > 0, self.rank * rows)


def contrastive_batch(micro_batch: int, env: DistEnv) -> int:
    """The pairs one ITC loss contrasts: the micro-batch of every process (each pair's negatives
    are the others). Reported beside the global batch, which it equals without accumulation."""
    return micro_batch * env.world_size
