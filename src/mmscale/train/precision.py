"""Precision modes resolved once (nanoGPT's ``ptdtype``/``ctx``): autocast context + grad scaler."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    name: str  # fp32 | bf16 | fp16
    device_type: str  # cpu | cuda
    weights: str = "fp32"  # fp32 | bf16: a bf16 model computes in bf16 without autocast

    @classmethod
    def resolve(cls, name: str, device: torch.device, weights: str = "fp32") -> "Precision":
        if name == "auto":
            name = "bf16" if device.type == "cuda" or weights == "bf16" else "fp32"
        return cls(name, device.type, weights)

    @property
    def label(self) -> str:
        return f"{self.name} (bf16 weights)" if self.weights == "bf16" else self.name

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    @property
    def sharded_param_dtype(self) -> torch.dtype | None:
        """The dtype FSDP2 gathers weights in: bf16 under bf16 autocast (the matmuls would cast
        them anyway); None (the stored fp32) otherwise: fp16 with its gradient scaler keeps the
        gather it had, which was not measured against an fp16 one."""
        return torch.bfloat16 if self.name == "bf16" else None

    def autocast(self):
        """Matmuls in bf16/fp16, reductions and the optimizer in fp32 (weights stay fp32). None
        for a bf16 model: autocast would only put its norms and softmaxes back in fp32."""
        if self.name == "fp32" or self.weights == "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling (5 exponent bits underflow small grads); bf16 does not."""
        if self.name != "fp16":
            return None
        return torch.amp.GradScaler(self.device_type)
