"""A non-recurrent multi-frame U-Net in the spirit of Su et al.'s DBN (CVPR 2017), without alignment.

Su et al. deblur a frame from a stack of its unaligned neighbours with an
encoder-decoder that has skip connections; Kim et al. compare against it
("DBN without alignment"). This is that idea scaled to the same cost as STRCNN
(about 0.6 M parameters at width 1, instead of DBN's 15 M) so that the table
compares designs, not sizes: it sees the same 2m+1 frames, keeps no state, and
has two down-sampling levels with additive skips.
"""

from __future__ import annotations

import keras
from keras import layers

from baselines.base import PACKAGE, DeblurCell, DeblurNet
from baselines.blocks import build_chain, conv, rgb_conv
from bench_deblur.registry import register


@keras.saving.register_keras_serializable(package=PACKAGE)
class MultiFrameUNetCell(DeblurCell):
    """Encoder (full, 1/2, 1/4 resolution) and decoder with deconvolutions and additive skips."""

    size_multiple = 4

    def build(self, window_shape):
        c1, c2, c3 = self.channels(32), self.channels(64), self.channels(96)
        self.level0 = [conv(c1, 5, "f0")]
        self.level1 = [conv(c2, 3, "d1", stride=2), conv(c2, 3, "f1_1"), conv(c2, 3, "f1_2")]
        self.level2 = [conv(c3, 3, "d2", stride=2), conv(c3, 3, "f2_1"), conv(c3, 3, "f2_2"), conv(c3, 3, "f2_3")]
        self.up1 = layers.Conv2DTranspose(c2, 4, strides=2, padding="same", activation="relu", name="u1")
        self.level3 = [conv(c2, 3, "f3_1"), conv(c2, 3, "f3_2")]
        self.up2 = layers.Conv2DTranspose(c1, 4, strides=2, padding="same", activation="relu", name="u2")
        self.level4 = [conv(c1, 3, "f4"), rgb_conv("out", self.global_skip)]
        self.skip1, self.skip2 = layers.Add(name="skip1"), layers.Add(name="skip2")
        s0 = build_chain(self.level0, window_shape)
        s1 = build_chain(self.level1, s0)
        s2 = build_chain(self.level2, s1)
        build_chain([self.up1], s2)
        self.skip1.build([s1, s1])
        build_chain(self.level3, s1)
        build_chain([self.up2], s1)
        self.skip2.build([s0, s0])
        build_chain(self.level4, s0)

    def step(self, window, states, training: bool = False):
        f0 = _apply(self.level0, window)
        f1 = _apply(self.level1, f0)
        f2 = _apply(self.level2, f1)
        x = _apply(self.level3, self.skip1([self.up1(f2), f1]))
        return _apply(self.level4, self.skip2([self.up2(x), f0])), states


def _apply(chain: list[layers.Layer], x):
    for layer in chain:
        x = layer(x)
    return x


@register("dbn")
def dbn(m: int = 1, width: float = 1.0, global_skip: bool = False) -> DeblurNet:
    """DBN-style multi-frame U-Net without alignment (after Su et al. 2017), no recurrence, STRCNN's cost."""
    return DeblurNet(MultiFrameUNetCell(m=m, width=width, global_skip=global_skip), name="dbn")
