"""The identity floor: output the blurry frame itself. Every learned model must beat it."""

import keras

from baselines.base import PACKAGE, DeblurCell, DeblurNet
from bench_deblur.registry import register


@keras.saving.register_keras_serializable(package=PACKAGE)
class IdentityCell(DeblurCell):
    """Returns the centre frame of the window; no weights, no state."""

    def build(self, window_shape):
        """Nothing to build: the identity has no weights."""

    def step(self, window, states, training: bool = False):
        return self.centre(window), states

    def call(self, window, states, training: bool = False):
        # The prediction is already the centre frame, so the global skip does not apply.
        return self.step(window, list(states) if isinstance(states, (list, tuple)) else [states])


@register("identity")
def identity(m: int = 1, width: float = 1.0, global_skip: bool = False) -> DeblurNet:
    """Identity floor: the blurry input frame, unchanged (no weights, no training)."""
    return DeblurNet(IdentityCell(m=m, width=width, global_skip=False), name="identity")
