"""ESTRNN of Zhong, Gao, Zheng, Zheng (ECCV 2020): an RDB-based recurrent cell and global spatio-temporal attention.

Written from the paper's description of the architecture, in the suite's terms:

- **RDB cell** (one pass per frame): a 5x5 conv; two residual dense blocks (RDBs), each followed by
  a stride-2 5x5 conv (n -> 2n -> 4n channels, 1/4 resolution); concatenation with the hidden state
  s_{t-1} (n channels); an RDB network of ``n_blocks`` RDBs on 5n channels with global feature
  fusion (1x1 conv over every block's output, then 3x3 conv) gives the frame's features h_t. The
  hidden-state branch (conv 3x3, RDB, conv 3x3) turns h_t into s_t.
- **GSA** (global spatio-temporal attention): the features of ``past_frames`` earlier frames, of
  frame n and of ``future_frames`` later ones are fused. Each neighbour is paired with frame n;
  the pair's globally pooled channels give a sigmoid channel attention (two 1x1 layers), the pair
  itself goes through two 1x1 convs, is weighted by that attention and condensed to 5n channels;
  the condensed pairs and frame n's own features are fused by a 1x1 conv.
- **Reconstructor**: two stride-2 transposed 3x3 convs (to 2n, then n channels, full resolution) and a
  5x5 conv to RGB, under the suite's optional global skip (``DeblurCell.call``).

n = 16 at width 1, so the RDB network has 80 channels ("C80"); ``n_blocks`` = 9 is the authors'
B9C80 and 15 their B15C80 (the default of their code). Parameter counts at width 1 with 2 past and 2
future frames (m = 2, the paper's setting; the suite's main comparison runs m = 1, i.e. 2 past + 1
future): 1,763,387 (B9C80) and 2,467,931 (B15C80), counted layer by layer in ``tests/test_estrnn.py``.

**Look-ahead as a feature buffer.** The suite's look-ahead m is ESTRNN's ``future_frames``. At step n
the cell sees frames n-m..n+m, runs the RDB cell once, on the newest frame n+m, and keeps the
features of frames n-past..n+m-1 as image-shaped state (1/4 resolution), next to the hidden state.
GSA then has everything it needs for frame n: the output lags the input by m frames, one RDB-cell
pass per frame. The buffer's start is filled by ``get_initial_state_like`` from the first window:
the features of frames 0..m-1 are computed there (the look-ahead the first output needs), with the
hidden state carried through them, and the past slots start at zero (no frames before the video).
The authors instead drop the first and last frames of every clip; the suite keeps N frames out for
N in (edges replicated, as for every model).

Choices of ours where the paper is silent or where the suite has a rule: ReLU wherever there is an
activation (the authors' code defaults to GELU; parameter counts do not change), ReLU after both
transposed convs, each RDB's 1x1 local fusion starts at zero (the block starts as the identity, as
the suite's ``ResBlock``) and the hidden state's last conv is ``feature_conv`` (3x3 + ReLU, small init,
so the recurrent loop starts contractive), the RGB conv starts at zero under the global skip.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from baselines.base import PACKAGE, DeblurCell, DeblurNet, zeros_state
from baselines.blocks import build_chain, conv, feature_conv, rgb_conv
from bench_deblur.registry import register


def _apply(chain: list[layers.Layer], x):
    for layer in chain:
        x = layer(x)
    return x


@keras.saving.register_keras_serializable(package=PACKAGE)
class RDB(layers.Layer):
    """Residual dense block: ``depth`` densely connected conv3x3 + ReLU layers (each adds ``growth``
    channels to the concatenation), a 1x1 local fusion back to the input's channels, a local residual.

    The fusion conv starts at zero, so the block starts as the identity (as ``ResBlock``).
    """

    def __init__(self, growth: int, depth: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.growth = growth
        self.depth = depth

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.dense = [conv(self.growth, 3, f"dense{i + 1}") for i in range(self.depth)]
        shape = input_shape
        for layer in self.dense:
            layer.build(shape)
            shape = shape[:-1] + (shape[-1] + self.growth,)
        self.fusion = conv(input_shape[-1], 1, "fusion", relu=False, init="zeros")
        self.fusion.build(shape)
        self.add = layers.Add(name="add")
        self.add.build([input_shape, input_shape])

    def call(self, x):
        y = x
        for layer in self.dense:
            y = ops.concatenate([y, layer(y)], axis=-1)
        return self.add([x, self.fusion(y)])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "growth": self.growth, "depth": self.depth}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GSA(layers.Layer):
    """Global spatio-temporal attention over the features of frames n-past..n+future (a list, oldest first).

    For each neighbour i: pair = [h_n, h_i] (2c channels); attention = sigmoid(1x1(relu(1x1(mean over
    space of pair)))) with 4c hidden units; pair' = condense(attention * 1x1(1x1(pair))), 2c -> 4c -> 2c
    -> c. Output: a 1x1 fusion conv over [pair'_i for every neighbour, h_n], (frames * c) channels. The
    layers are shared by all neighbours.
    """

    def __init__(self, past: int, future: int, **kwargs):
        super().__init__(**kwargs)
        self.past = past
        self.future = future

    @property
    def frames(self) -> int:
        return self.past + 1 + self.future

    def build(self, feature_shape):
        feature_shape = tuple(feature_shape)
        c = feature_shape[-1]
        pair = feature_shape[:-1] + (2 * c,)
        pooled = (feature_shape[0], 1, 1, 2 * c)
        self.attention, self.project, self.condense, self.weigh = [], [], None, None
        if self.frames > 1:
            self.attention = [
                conv(4 * c, 1, "attention1"),
                layers.Conv2D(2 * c, 1, activation="sigmoid", name="attention2"),
            ]
            build_chain(self.attention, pooled)
            self.project = [conv(4 * c, 1, "project1", relu=False), conv(2 * c, 1, "project2", relu=False)]
            build_chain(self.project, pair)
            self.weigh = layers.Multiply(name="weigh")
            self.weigh.build([pooled, pair])
            self.condense = conv(c, 1, "condense", relu=False)
            self.condense.build(pair)
        self.fusion = conv(self.frames * c, 1, "fusion", relu=False)
        self.fusion.build(feature_shape[:-1] + (self.frames * c,))

    def call(self, features):
        if len(features) != self.frames:
            raise ValueError(f"GSA expects the features of {self.frames} frames, got {len(features)}")
        centre = features[self.past]
        fused = []
        for i, h in enumerate(features):
            if i == self.past:
                continue
            pair = ops.concatenate([centre, h], axis=-1)
            weights = _apply(self.attention, ops.mean(pair, axis=(1, 2), keepdims=True))
            fused.append(self.condense(self.weigh([weights, _apply(self.project, pair)])))
        return self.fusion(ops.concatenate([*fused, centre], axis=-1))

    def compute_output_shape(self, feature_shapes):
        first = tuple(feature_shapes[0])
        return first[:-1] + (self.frames * first[-1],)

    def get_config(self) -> dict:
        return {**super().get_config(), "past": self.past, "future": self.future}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ESTRNNCell(DeblurCell):
    """ESTRNN for one frame: RDB cell on frame n+m, GSA over the buffered features, reconstructor.

    States: the hidden state s (n channels) and the features of frames n-past..n+m-1 (5n channels
    each, oldest first), all at 1/4 resolution.
    """

    size_multiple = 4

    def __init__(self, past_frames: int = 2, n_blocks: int = 9, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(past_frames, int) or isinstance(past_frames, bool) or past_frames < 0:
            raise ValueError(f"past_frames={past_frames!r}: expected a non-negative integer")
        if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or n_blocks < 1:
            raise ValueError(f"n_blocks={n_blocks!r}: expected a positive integer")
        self.past_frames = past_frames
        self.n_blocks = n_blocks
        self.base = self.channels(16)
        self.feature_channels = 5 * self.base
        self.state_channels = [self.base] + [self.feature_channels] * (past_frames + self.m)

    def build(self, window_shape):
        n, c = self.base, self.feature_channels
        frame = tuple(window_shape[:-1]) + (3,)
        self.encoder = [
            conv(n, 5, "conv_in", relu=False),
            RDB(n, name="rdb1"),
            conv(2 * n, 5, "down1", stride=2, relu=False),
            RDB(int(n * 3 / 2), name="rdb2"),
            conv(4 * n, 5, "down2", stride=2, relu=False),
        ]
        quarter = build_chain(self.encoder, frame)
        body = tuple(quarter[:-1]) + (c,)
        self.body = [RDB(2 * n, name=f"body_rdb{i + 1}") for i in range(self.n_blocks)]
        build_chain(self.body, body)
        self.global_fusion = [conv(c, 1, "gff_conv1", relu=False), conv(c, 3, "gff_conv2", relu=False)]
        build_chain(self.global_fusion, tuple(quarter[:-1]) + (self.n_blocks * c,))
        self.hidden = [conv(n, 3, "hidden_conv1", relu=False), RDB(n, name="hidden_rdb"), feature_conv(n)]
        build_chain(self.hidden, body)
        self.gsa = GSA(self.past_frames, self.m, name="gsa")
        self.gsa.build(body)
        self.reconstructor = [
            layers.Conv2DTranspose(2 * n, 3, strides=2, padding="same", activation="relu", name="deconv1"),
            layers.Conv2DTranspose(n, 3, strides=2, padding="same", activation="relu", name="deconv2"),
            rgb_conv("to_rgb", self.global_skip, kernel=5),
        ]
        build_chain(self.reconstructor, self.gsa.compute_output_shape([body]))

    def rdb_cell(self, frame, hidden):
        """One frame (B, H, W, 3) and s_{t-1} -> (h_t, s_t), both at 1/4 resolution."""
        x = ops.concatenate([_apply(self.encoder, frame), hidden], axis=-1)
        outputs = []
        for block in self.body:
            x = block(x)
            outputs.append(x)
        h = _apply(self.global_fusion, ops.concatenate(outputs, axis=-1))
        return h, _apply(self.hidden, h)

    def window_frame(self, window, k: int):
        """Frame k of the window (0 = n-m, ..., 2m = n+m)."""
        return window[..., 3 * k : 3 * k + 3]

    def get_initial_state_like(self, window) -> list:
        """Zero hidden state and past features; the features of frames 0..m-1 from the first window.

        The first window holds frames 0..m in its slots m..2m; the RDB cell runs over slots m..2m-1
        (frames 0..m-1) from a zero hidden state, so step 0 starts with the look-ahead it needs and runs
        the RDB cell on frame m only, like every later step. Fed a later window (the state ablation,
        ``Streamer(carry_state=False)``), it gives that frame the same start: no past, a fresh look-ahead.
        """
        hidden = zeros_state(window, self.base, stride=4)
        past = [zeros_state(window, self.feature_channels, stride=4) for _ in range(self.past_frames)]
        ahead = []
        for k in range(self.m):
            h, hidden = self.rdb_cell(self.window_frame(window, self.m + k), hidden)
            ahead.append(h)
        return [hidden, *past, *ahead]

    def step(self, window, states, training: bool = False):
        hidden, *buffer = states
        h, hidden = self.rdb_cell(self.window_frame(window, 2 * self.m), hidden)
        features = [*buffer, h]
        image = _apply(self.reconstructor, self.gsa(features))
        return image, [hidden, *features[1:]]

    def get_config(self) -> dict:
        return {**super().get_config(), "past_frames": self.past_frames, "n_blocks": self.n_blocks}


@register("estrnn")
def estrnn(m: int = 1, width: float = 1.0, global_skip: bool = False, past_frames: int = 2, n_blocks: int = 9) -> DeblurNet:
    """ESTRNN (Zhong et al. 2020): RDB recurrent cell + attention over the features of past and look-ahead frames."""
    cell = ESTRNNCell(m=m, width=width, global_skip=global_skip, past_frames=past_frames, n_blocks=n_blocks)
    return DeblurNet(cell, name="estrnn")
