"""FP8 matmuls for training, through torchao's float8 recipes (Hopper and newer GPUs).

Which linears pay is a property of their shapes, not of the model: a float8 matmul saves time
only when it is large enough to win back the casts and scale reductions around it. torchao ships
filters measured on H100 for each recipe, and we use them rather than our own thresholds; the
heads (ITC projections to 256, ITM to 2) are always left in bf16. Parameter names do not change,
so checkpoints load either way. The weights stay in fp32/bf16; only the matmul inputs are cast.
"""

from __future__ import annotations

from torch import nn

from mmscale.errors import ConfigError

RECIPES = ("tensorwise", "rowwise")
LAYER_CHOICES = ("auto", "all")
KEEP_HIGH_PRECISION = ("image_head", "text_head", "itm_head")


def convert_linears_to_fp8(model: nn.Module, recipe: str, layers: str = "auto") -> list[str]:
    """Swap linears for ``Float8Linear`` in place; returns their qualified names.

    ``layers="auto"``: the ones torchao's filter for ``recipe`` says pay; ``"all"``: every linear
    whose dims the FP8 kernels accept (multiples of 16), heads excepted, to measure the filter.
    """
    if recipe not in RECIPES:
        raise ConfigError("train.fp8", f"unknown recipe '{recipe}' (choose from off, {', '.join(RECIPES)})")
    if layers not in LAYER_CHOICES:
        raise ConfigError("train.fp8_layers", f"unknown choice '{layers}' (choose from {', '.join(LAYER_CHOICES)})")
    try:
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training
    except ImportError:
        raise ConfigError("train.fp8", "needs torchao (pip install 'mmscale[fp8]')") from None
    pays = _torchao_filter(recipe) if layers == "auto" else _fits
    converted: list[str] = []

    def keep(module: nn.Module, name: str) -> bool:
        if pays(module, name):
            converted.append(name)
            return True
        return False

    convert_to_float8_training(model, module_filter_fn=keep, config=Float8LinearConfig.from_recipe_name(recipe))
    return converted


def _torchao_filter(recipe: str):
    """torchao's measured per-recipe filter (a private helper there, so its absence is reported)."""
    try:
        from torchao.float8.float8_linear_utils import _auto_filter_for_recipe
    except ImportError:
        raise ConfigError("train.fp8_layers", "this torchao has no per-recipe filter; use fp8_layers=all") from None
    return _auto_filter_for_recipe(recipe, filter_fqns=list(KEEP_HIGH_PRECISION))


def _fits(module: nn.Module, name: str) -> bool:
    if not isinstance(module, nn.Linear) or any(head in name for head in KEEP_HIGH_PRECISION):
        return False
    out_features, in_features = module.weight.shape
    return out_features % 16 == 0 and in_features % 16 == 0
