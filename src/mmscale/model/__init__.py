"""Single-device model math: encoders, the fusion registry, ITC/ITM losses."""

from mmscale.model.config import ModelConfig
from mmscale.model.fusion import FUSIONS
from mmscale.model.multimodal import MultimodalModel

__all__ = ["FUSIONS", "ModelConfig", "MultimodalModel"]
