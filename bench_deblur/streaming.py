"""Online deblurring: any model of ``baselines`` run one frame at a time, as ``deblur`` and ``evaluate`` do.

Harness code, kept out of ``baselines/`` so that a model depends on Keras and the
registry only: a baseline defines its cell, and this drives it through the compiled
step of ``bench_deblur.runtime``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from keras import ops

from bench_deblur.runtime import compiled_step

if TYPE_CHECKING:
    from baselines.base import DeblurNet


class Streamer:
    """Online deblurring: one frame in, deblurred frames out after a look-ahead of m frames.

    Keeps only the recurrent state and the last 2m+1 frames, so memory does not
    grow with the video. Each step is the compiled step ``bench-deblur speed``
    times (``runtime.compiled_step``), so streaming runs at the benchmark's
    speed. Frames of any size are padded (edge replication) to a
    multiple of the cell's ``size_multiple`` and cropped back. A frame may also be
    a batch (B, H, W, 3) of B independent videos stepped together (as evaluation
    does with many small sequences). Outputs equal ``model(video)`` on the same frames.

    ``carry_state=False`` feeds the cell its initial state before every frame instead of the
    state the previous frame left: the state ablation, which shows how much a trained
    recurrent model uses its memory.
    """

    def __init__(self, model: DeblurNet, carry_state: bool = True):
        self.model = model
        self.cell = model.cell
        self.m = model.m
        self.carry_state = carry_state
        self.reset()

    def reset(self) -> None:
        """Forget the video: zero state, empty window."""
        self._window: deque = deque(maxlen=2 * self.m + 1)
        self._states = None
        self._pending = 0
        self._shape: tuple[int, ...] | None = None
        self.last_states = None

    @property
    def last_window(self) -> np.ndarray | None:
        """The window (B, H, W, 3(2m+1)) of the step just taken, for ``DeblurCell.diagnostics``.

        Rebuilt from the frames on request, not kept (33 MB per 720p step); valid until the next frame goes in.
        """
        return None if self.last_states is None else self._stacked_window()

    def step_fn(self, window, states):
        """One compiled cell step on a batch of windows (B, H, W, 3(2m+1)); H, W multiples of ``size_multiple``."""
        if states is None:
            states = self.cell.get_initial_state_like(window)
        out, states = compiled_step(self.cell).call(window, states)
        return out, list(states) if isinstance(states, (list, tuple)) else [states]

    def push(self, frame: np.ndarray) -> Iterator[np.ndarray]:
        """Add a frame (H, W, 3), or (B, H, W, 3), float in [0, 1]; yield every frame that is now complete."""
        frame = np.asarray(frame, dtype="float32")
        if frame.ndim not in (3, 4) or frame.shape[-1] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB frame or a (B, H, W, 3) batch, got shape {frame.shape}")
        if self._shape is None:
            self._shape = frame.shape
            self._window.extend([self._pad(frame)] * self.m)
        elif frame.shape != self._shape:
            raise ValueError(f"frame shape changed from {self._shape} to {frame.shape} mid-video")
        self._window.append(self._pad(frame))
        self._pending += 1
        if len(self._window) == self._window.maxlen:
            yield self._emit()

    def flush(self) -> Iterator[np.ndarray]:
        """Yield the last frames, replicating the final frame as the missing look-ahead."""
        while self._pending:
            self._window.append(self._window[-1])
            if len(self._window) == self._window.maxlen:
                yield self._emit()
        self.reset()

    def run(self, frames) -> Iterator[np.ndarray]:
        """Deblur an iterable of frames (or of batches), yielding as many as come in."""
        for frame in frames:
            yield from self.push(frame)
        yield from self.flush()

    def _stacked_window(self) -> np.ndarray:
        window = np.concatenate(self._window, axis=-1)
        return window if window.ndim == 4 else window[None]

    def _emit(self) -> np.ndarray:
        window = self._stacked_window()
        if self._states is None or not self.carry_state:
            self._states = self.cell.get_initial_state_like(window)
        self.last_states = self._states  # kept (not copied) so a caller can inspect the step just taken
        out, self._states = self.step_fn(window, self._states)
        self._pending -= 1
        h, w = self._shape[-3:-1]
        out = ops.convert_to_numpy(out)[:, :h, :w]
        return out if len(self._shape) == 4 else out[0]

    def _pad(self, frame: np.ndarray) -> np.ndarray:
        k = self.cell.size_multiple
        h, w = frame.shape[-3:-1]
        pad = ((0, -h % k), (0, -w % k), (0, 0))
        return np.pad(frame, ((0, 0),) * (frame.ndim - 3) + pad, mode="edge")
