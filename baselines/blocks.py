"""The paper's building blocks (Kim et al., ICCV 2017, fig. 2), shared by every baseline.

Channel counts are the paper's (64 / 32) times a width multiplier; every conv is
"same"-padded, so only the stride-2 conv and the stride-2 deconv change the size.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from baselines.base import PACKAGE, DeblurCell
from baselines.placements import DTB_PLACEMENTS


def conv(filters: int, kernel: int, name: str, stride: int = 1, relu: bool = True,
         init: str | keras.initializers.Initializer = "glorot_uniform") -> layers.Conv2D:
    """A "same"-padded conv, ReLU by default; ``init`` is the kernel's initializer (biases start at zero)."""
    return layers.Conv2D(filters, kernel, strides=stride, padding="same", activation="relu" if relu else None,
                         kernel_initializer=init, name=name)


def rgb_conv(name: str, zero_init: bool, kernel: int = 3) -> layers.Conv2D:
    """The last conv, to RGB (3x3 unless ``kernel`` says otherwise). Zero-initialised under the global
    skip, so training starts at the identity floor (output = blurry centre frame) instead of below it."""
    return conv(3, kernel, name, relu=False, init="zeros" if zero_init else "glorot_uniform")


def feature_conv(filters: int) -> layers.Conv2D:
    """The feature head F_n, initialised 10x smaller (in std) than Glorot.

    F_n flows back into the encoder and, through the residual blocks' identity
    paths, straight back into F_{n+1}; at Glorot scale that loop starts with a
    gain above 1, and short-trained models then diverge a few frames past their
    training clip length (measured: -3.6 dB over 24 frames after 360 steps on the
    quick preset). Started small, the loop is contractive and training grows it
    (measured: +0.11 dB, stable over 24 frames). The paper does not give its init.
    """
    return conv(filters, 3, "feature_conv", init=keras.initializers.VarianceScaling(0.01, "fan_avg", "uniform"))


def build_chain(chain: list[layers.Layer], shape: tuple) -> tuple:
    """Build layers applied one after another from the input shape; return the output shape."""
    for layer in chain:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResBlock(layers.Layer):
    """x + conv3x3(relu(conv3x3(x))): the residual block of the encoder and decoder.

    The second conv starts at zero, so every block starts as the identity (as in Goyal et
    al. 2017's zero-gamma and De and Smith 2020's SkipInit; the paper does not give its
    init). Why, measured on the quick preset (strcnn_dtb, 180 steps): test gains over the
    blurry input of +0.41 / +0.34 / +0.38 dB (seeds 0, 1, and seed 0 with another batch
    order) against +0.34 / +0.33 / +0.06 with Glorot, which stalled near the identity
    on that batch order.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters

    def build(self, input_shape):
        self.conv1 = conv(self.filters, 3, "conv1")
        self.conv2 = conv(self.filters, 3, "conv2", relu=False, init="zeros")
        self.add = layers.Add(name="add")
        shape = build_chain([self.conv1, self.conv2], input_shape)
        self.add.build([shape, shape])

    def call(self, x):
        return self.add([x, self.conv2(self.conv1(x))])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnitInterval(keras.constraints.Constraint):
    """Keep a weight in [0, 1] after every optimizer update (DTB's beta)."""

    def __call__(self, w):
        return ops.clip(w, 0.0, 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DTB(layers.Layer):
    """Dynamic temporal blending: h~_n = w * h_n + (1 - w) * h~_{n-1}.

    w = min(1, |tanh(conv5x5([h~_{n-1}, h_n]))| + beta), with beta a trainable
    scalar kept in [0, 1] by a constraint. The paper does not give beta's initial
    value; it starts at 0.1, inside the interval, so that its first updates can
    move it either way (at exactly 0 the constraint would undo every step down).
    """

    def __init__(self, filters: int, beta_init: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.beta_init = beta_init

    def build(self, input_shape):
        self.conv = conv(self.filters, 5, "blend_conv", relu=False)
        self.conv.build(tuple(input_shape[:-1]) + (2 * input_shape[-1],))
        self.beta = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.beta_init), constraint=UnitInterval(), name="beta"
        )

    def call(self, h, h_prev):
        """Return (blended features, w); w is kept by the cell for inspection."""
        d = self.conv(ops.concatenate([h_prev, h], axis=-1))
        w = ops.minimum(1.0, ops.abs(ops.tanh(d)) + self.beta)
        return w * h + (1.0 - w) * h_prev, w

    def macs(self, input_shapes, output_shape) -> int:
        """Element-wise work beyond the conv: tanh, abs, +beta, min, then 2 mul + 2 add/sub."""
        elements = 1
        for size in output_shape[1:]:
            elements *= int(size)
        return 7 * elements

    def compute_output_shape(self, h_shape, h_prev_shape=None):
        return tuple(h_shape), tuple(h_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "beta_init": self.beta_init}


PLACEMENTS = {p.name: p.blocks_before for p in DTB_PLACEMENTS}
"""Where DTB sits, as the number of residual blocks (4 encoder, then 4 decoder) before it (``placements``)."""


@keras.saving.register_keras_serializable(package=PACKAGE)
class EncoderDecoderCell(DeblurCell):
    """The paper's network for one frame: encoder, optional DTB, decoder, image and feature heads.

    Encoder: conv5x5 64 + ReLU; conv3x3 32 stride 2 + ReLU; concatenation with the
    fed-back feature map F_{n-1}; 4 residual blocks of 64 channels. Decoder: 4
    residual blocks; image head deconv4x4 stride 2 64 + ReLU then conv3x3 to RGB;
    feature head conv3x3 32 + ReLU at half resolution gives F_n.

    ``feedback=False`` is the naive CNN: F stays zero and there is no feature
    head, so it is the same encoder/decoder with no recurrence. ``placement``
    (see ``PLACEMENTS``) inserts DTB, whose blended features h~_n are the second
    state. States start at zero.
    """

    def __init__(self, feedback: bool = True, placement: str = "none", **kwargs):
        super().__init__(**kwargs)
        if placement not in PLACEMENTS:
            raise ValueError(f"placement={placement!r}: expected one of {', '.join(PLACEMENTS)}")
        self.feedback = feedback
        self.placement = placement
        self.feature_channels = self.channels(32)
        self.body_channels = self.channels(64)
        self.state_channels = [self.feature_channels]
        self.dtb_at = PLACEMENTS[placement]
        if self.dtb_at is not None:
            self.state_channels.append(self.body_channels)

    def build(self, window_shape):
        c, f = self.body_channels, self.feature_channels
        self.encoder_in = [conv(c, 5, "encoder_conv1"), conv(f, 3, "encoder_conv2", stride=2)]
        half = build_chain(self.encoder_in, window_shape)
        body_shape = tuple(half[:-1]) + (c,)
        self.body = [ResBlock(c, name=f"{part}_res{i}") for part in ("encoder", "decoder") for i in range(1, 5)]
        build_chain(self.body, body_shape)
        self.dtb = None
        if PLACEMENTS[self.placement] is not None:
            self.dtb = DTB(c, name="dtb")
            self.dtb.build(body_shape)
        self.image_head = [
            layers.Conv2DTranspose(c, 4, strides=2, padding="same", activation="relu", name="image_deconv"),
            rgb_conv("image_conv", self.global_skip),
        ]
        build_chain(self.image_head, body_shape)
        self.feature_head = feature_conv(f) if self.feedback else None
        if self.feature_head is not None:
            self.feature_head.build(body_shape)

    @property
    def recurrent(self) -> bool:
        """The naive CNN carries F as a constant zero input: only feedback or DTB make a memory."""
        return self.feedback or self.dtb_at is not None

    def step(self, window, states, training: bool = False):
        image, new_states, _ = self.step_with_blend(window, states)
        return image, new_states

    def diagnostics(self, window, states) -> dict:
        """DTB's blending weight w, (B, H/2, W/2, C), as ``blend_weight``; nothing without DTB."""
        if self.dtb is None:
            return {}
        w = self.step_with_blend(window, list(states))[2]
        return {"blend_weight": w}

    def step_with_blend(self, window, states):
        """One frame; also returns DTB's blending weight w (None without DTB) for inspection."""
        feedback, *blend_state = states
        x = self.encoder_in[1](self.encoder_in[0](window))
        x = ops.concatenate([x, feedback], axis=-1)
        at = PLACEMENTS[self.placement]
        new_blend, w = [], None
        for i in range(len(self.body) + 1):
            if i == at:
                x, w = self.dtb(x, blend_state[0])
                new_blend = [x]
            if i < len(self.body):
                x = self.body[i](x)
        image = self.image_head[1](self.image_head[0](x))
        feedback = self.feature_head(x) if self.feature_head is not None else feedback
        return image, [feedback, *new_blend], w

    def get_config(self) -> dict:
        return {**super().get_config(), "feedback": self.feedback, "placement": self.placement}
