"""The model contract every baseline shares: frame windows, the cell base class, the RNN driver, the model.

A baseline is a *cell*: one network pass per frame that maps the window of
2m+1 blurry frames around frame n (stacked on channels) and the recurrent state
from frame n-1 to the deblurred frame n and the next state. ``DeblurRNN`` runs a
cell over a whole clip with ``keras.layers.RNN`` (training, evaluation) and the
harness's ``bench_deblur.streaming.Streamer`` runs the same cell one frame at a
time (online use), so both give the same outputs. Nothing here knows the
harness: a baseline depends on Keras and the registry only.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "bench_deblur"


def frame_windows(video, m: int):
    """(B, N, H, W, 3) -> (B, N, H, W, 3(2m+1)): frames n-m..n+m on channels, edges replicated.

    Replicating the first and last frame for missing neighbours keeps N frames
    out for N frames in, for every N >= 1.
    """
    if m == 0:
        return video
    first = ops.repeat(video[:, :1], m, axis=1)
    last = ops.repeat(video[:, -1:], m, axis=1)
    padded = ops.concatenate([first, video, last], axis=1)
    n = ops.shape(video)[1]
    return ops.concatenate([padded[:, k : k + n] for k in range(2 * m + 1)], axis=-1)


def zeros_state(window, channels: int, stride: int = 2):
    """Zeros of shape (B, H/stride, W/stride, channels) made from the window's own shape.

    Built from a slice of the input rather than from stored sizes, as Keras's
    ``ConvLSTM`` cannot, so one trained model runs on any frame size.
    """
    z = ops.zeros_like(window[:, ::stride, ::stride, :1])
    return ops.repeat(z, channels, axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DeblurCell(keras.layers.Layer):
    """Base of every baseline's cell: ``call(window, states) -> (frame, new_states)``.

    Subclasses set ``state_channels`` (channels of each half-resolution state) in
    ``__init__``, build their sublayers in ``build`` so that ``count_params`` is
    right before the first training step, and implement
    ``step(window, states, training) -> (prediction, new_states)``; ``call`` adds
    the optional global skip (output = centre blurry frame + prediction). An empty
    ``state_channels`` means a stateless cell; it carries one dummy (B, 1) state
    because ``keras.layers.RNN`` needs at least one. ``size_multiple`` is what
    frame sizes must divide by (the network's total stride). ``diagnostics`` may be
    overridden to expose internal maps (e.g. DTB's blending weight) to the report.
    """

    size_multiple = 2

    def __init__(self, m: int = 1, width: float = 1.0, global_skip: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.m = m
        self.width = width
        self.global_skip = global_skip
        self.state_channels: list[int] = []

    @property
    def state_size(self) -> list[int]:
        return list(self.state_channels) or [1]

    @property
    def recurrent(self) -> bool:
        """Whether frame n's output depends on earlier frames through the state (what the state ablation tests)."""
        return bool(self.state_channels)

    def channels(self, base: int) -> int:
        """Scale a channel count from the paper by the width multiplier (at least 4)."""
        return max(4, int(round(base * self.width)))

    def centre(self, window):
        """The blurry frame n itself, taken from the middle of the window."""
        return window[..., 3 * self.m : 3 * self.m + 3]

    def get_initial_state_like(self, window) -> list:
        """Zero initial states (the paper leaves them open; zeros are the common choice)."""
        if not self.state_channels:
            return [ops.zeros_like(window[:, 0, 0, :1])]
        return [zeros_state(window, c) for c in self.state_channels]

    def call(self, window, states, training: bool = False):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        out, new_states = self.step(window, states, training=training)
        if self.global_skip:
            out = out + self.centre(window)
        return out, new_states

    def compute_output_shape(self, window_shape, states_shape=None):
        return tuple(window_shape[:-1]) + (3,)

    def diagnostics(self, window, states) -> dict:
        """Internal maps of one step, for the report; none by default.

        Called (outside training) with the window and the states a step was taken
        from, e.g. ``Streamer.last_window`` and ``Streamer.last_states``; returns
        ``{name: tensor}`` with each map shaped (B, h, w) or (B, h, w, C), at any
        resolution that divides the (padded) frame, such as DTB's blending weight
        ``{"blend_weight": w}`` at half resolution. The evaluation averages channels,
        resamples each map to the frame by its shape ratio and stores it with the
        sample crops; the report draws every map it finds.
        """
        return {}

    def get_config(self) -> dict:
        return {**super().get_config(), "m": self.m, "width": self.width, "global_skip": self.global_skip}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DeblurRNN(keras.layers.RNN):
    """``keras.layers.RNN`` with image-shaped states, after Keras's own ``ConvLSTM``.

    Keras's ``RNN`` assumes 1-D states of fixed size; here the initial states are
    made from the input's own shape and the output shape is overridden.
    """

    def __init__(self, cell: DeblurCell, **kwargs):
        kwargs.setdefault("return_sequences", True)
        super().__init__(cell, **kwargs)

    def call(self, sequences, initial_state=None, mask=None, training: bool = False):
        if initial_state is None:
            initial_state = self.cell.get_initial_state_like(sequences[:, 0])
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        return tuple(sequences_shape[:-1]) + (3,)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DeblurNet(keras.Model):
    """A video deblurring model: (B, N, H, W, 3) blurry -> (B, N, H, W, 3) sharp.

    H and W must be multiples of ``cell.size_multiple`` (2 for the paper's networks).

    The same class serves every baseline; only the cell differs.
    ``bench_deblur.streaming.Streamer`` gives the same outputs online and handles any frame size.
    """

    def __init__(self, cell: DeblurCell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.m = cell.m
        self.rnn = DeblurRNN(cell, name="recurrence")

    def build(self, input_shape):
        window_shape = tuple(input_shape[:-1]) + (3 * (2 * self.m + 1),)
        self.rnn.build(window_shape)
        self.built = True

    def call(self, video, training: bool = False):
        return self.rnn(frame_windows(video, self.m), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {"name": self.name, "cell": keras.saving.serialize_keras_object(self.cell)}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        cell = keras.saving.deserialize_keras_object(config.pop("cell"))
        return cls(cell, **config)
