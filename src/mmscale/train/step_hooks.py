"""Step hooks for optimizers that update without calling ``torch.optim.AdamW.step``.

The stage timers of ``bench pipeline`` time the update through ``register_step_pre_hook`` and
``register_step_post_hook``. An update that runs its own kernels (``CompiledAdamW``,
``FlatMasterAdamW``) never calls the inner AdamW's ``step``, so the inner optimizer's hooks
would never fire: these run around the whole update instead, clipping included.
"""

from __future__ import annotations

from collections import OrderedDict

from torch.utils.hooks import RemovableHandle


class StepHooks:
    """The ``torch.optim.Optimizer`` hook surface, run by the update itself."""

    def __init__(self):
        self._pre_hooks: OrderedDict = OrderedDict()  # RemovableHandle keeps a weak reference to it
        self._post_hooks: OrderedDict = OrderedDict()

    def register_step_pre_hook(self, hook) -> RemovableHandle:
        handle = RemovableHandle(self._pre_hooks)
        self._pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook) -> RemovableHandle:
        handle = RemovableHandle(self._post_hooks)
        self._post_hooks[handle.id] = hook
        return handle

    def run_pre_hooks(self, optimizer) -> None:
        for hook in list(self._pre_hooks.values()):
            hook(optimizer, (), {})

    def run_post_hooks(self, optimizer) -> None:
        for hook in list(self._post_hooks.values()):
            hook(optimizer, (), {})
