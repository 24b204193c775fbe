"""Model cost: multiply-accumulates per output frame, and synchronised streaming speed.

MACs come from the shapes each layer actually sees in one recurrent step at the
requested frame size, so they cover recurrence and look-ahead exactly as run.
Speed is measured on the online path (one cell step per frame) with the device
synchronised after every frame: without that, asynchronous GPU backends report
the speed of *queueing* work, often ~10x too fast.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers

from bench_deblur import runtime
from bench_deblur.provenance import device_info

#: Layers whose cost is one MAC-equivalent per output element.
ELEMENTWISE = (
    layers.Add,
    layers.Subtract,
    layers.Multiply,
    layers.Average,
    layers.Maximum,
    layers.Minimum,
    layers.ReLU,
    layers.LeakyReLU,
)


class _Probe(keras.Operation):
    """Runs a function on symbolic inputs: shapes flow through every layer, no arithmetic is done."""

    def __init__(self, fn: Callable) -> None:
        super().__init__()
        self.fn = fn

    def call(self, x):
        return self.fn(x)


def _shapes(tree: Any) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in t.shape) for t in keras.tree.flatten(tree) if hasattr(t, "shape")]


def _elements(shape: tuple[int, ...]) -> int:
    """Elements per frame: the batch axis (size 1 here) is left out."""
    return int(np.prod(shape[1:], dtype=np.int64))


def _channels(shape: tuple[int, ...], data_format: str) -> int:
    return shape[1] if data_format == "channels_first" else shape[-1]


def _activation_macs(layer: layers.Layer, out: tuple[int, ...]) -> int:
    """A fused non-linear activation costs one per output element, as a separate ReLU layer would."""
    linear = getattr(layer.activation, "__name__", "") == "linear"
    return 0 if linear else _elements(out)


def layer_macs(layer: layers.Layer, in_shapes: list[tuple[int, ...]], out_shapes: list[tuple[int, ...]]) -> int | None:
    """MACs of one call of ``layer`` (biases not counted); None for a layer this counter does not know.

    A layer's own ``macs(input_shapes, output_shape)`` (output_shape: its first
    output) wins; it should count only work its sublayers do not, since those are
    counted on their own.
    """
    out = out_shapes[0]
    if callable(getattr(layer, "macs", None)):
        return int(layer.macs(in_shapes, out))
    if isinstance(layer, layers.Conv2DTranspose):
        kh, kw = layer.kernel_size
        return _elements(in_shapes[0]) * kh * kw * layer.filters + _activation_macs(layer, out)
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        cin = _channels(in_shapes[0], layer.data_format)
        return _elements(out) * kh * kw * cin // layer.groups + _activation_macs(layer, out)
    if isinstance(layer, layers.Activation):
        return _activation_macs(layer, out)
    if isinstance(layer, ELEMENTWISE):
        return _elements(out)
    return None


def _named_sublayers(root: layers.Layer) -> list[tuple[str, layers.Layer]]:
    """Every nested layer with a path of names below ``root`` (Keras leaves ``path`` unset for weightless layers)."""
    found, seen = [], {id(root)}
    stack = [("", root)]
    while stack:
        prefix, layer = stack.pop()
        for sub in reversed(layer._layers):
            if id(sub) not in seen:
                seen.add(id(sub))
                found.append((prefix + sub.name, sub))
                stack.append((f"{prefix}{sub.name}/", sub))
    return found


def _step_and_input(model: Any) -> tuple[layers.Layer, Callable, Callable, int]:
    """The layer tree to instrument, the state a video starts from (a function of the first input), one step
    as a function of an input and a state, and input channels."""
    if hasattr(model, "cell"):
        cell = model.cell
        return cell, cell.get_initial_state_like, cell, 3 * (2 * model.m + 1)
    if isinstance(model, keras.Model) and model.inputs:
        return model, lambda x: None, lambda x, _: model(x), int(model.inputs[0].shape[-1])
    raise TypeError("expected a DeblurNet (with .cell and .m) or a built functional/Sequential keras.Model")


def count_macs(model: Any, height: int, width: int) -> dict[str, Any]:
    """MACs per output frame at ``height`` x ``width``: one cell step (or one forward pass), batch 1.

    The steady state: the initial state (``get_initial_state_like``) is made before counting starts,
    since a video pays for it once, not per frame (a cell that primes a look-ahead buffer there, as
    ESTRNN does, would otherwise be charged those passes on every frame). Counted rule by rule from the
    input/output shapes each sublayer sees while one step runs symbolically (no arithmetic, so 720p costs nothing):
    Conv2D = Hout*Wout*Cout*kh*kw*Cin/groups; Conv2DTranspose = Hin*Win*Cin*kh*kw*Cout;
    element-wise layers (Add, Multiply, ReLU, Activation, ...) and fused non-linear
    activations = output elements; layers with ``macs()`` report their own. Biases
    are not counted. A layer called twice is counted twice. Data movement
    (concatenation, padding, slicing) and raw ops outside layers are not counted;
    leaf layers the rules do not know are listed under "uncounted".
    """
    root, start, step, channels = _step_and_input(model)
    named = _named_sublayers(root)
    calls: list[tuple[str, layers.Layer, list, list]] = []
    counting = False

    def instrument(path: str, layer: layers.Layer) -> None:
        original = layer.call

        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            if counting:
                calls.append((path, layer, _shapes((args, kwargs)), _shapes(out)))
            return out

        layer.call = call

    def steady_step(x):
        nonlocal counting
        states = start(x)
        counting = True
        return step(x, states)

    for path, layer in named:
        instrument(path, layer)
    try:
        _Probe(steady_step).compute_output_spec(keras.KerasTensor((1, height, width, channels)))
    finally:
        for _, layer in named:
            del layer.call  # the instance attribute; the class's call is visible again
    by_layer: dict[str, int] = {}
    uncounted: set[str] = set()
    for path, layer, ins, outs in calls:
        macs = layer_macs(layer, ins, outs)
        if macs is not None:
            by_layer[path] = by_layer.get(path, 0) + macs
        elif not layer._layers:
            uncounted.add(path)
            if layer.weights:
                warnings.warn(
                    f"count_macs: {path} ({type(layer).__name__}) has weights but no MAC rule; counted as 0",
                    stacklevel=2,
                )
    total = sum(by_layer.values())
    return {
        "macs": total,
        "gmacs": total / 1e9,
        "by_layer": dict(sorted(by_layer.items())),
        "uncounted": sorted(uncounted),
        "height": height,
        "width": width,
    }


def measure_fps(
    model: Any, height: int, width: int, frames: int = 20, repeats: int = 3, warmup: int = 3, dtype: str = "float32"
) -> dict[str, Any]:
    """Streaming speed at ``height`` x ``width``: random windows through the step ``Streamer`` runs.

    ``model`` is a DeblurNet (``.cell``, ``.m``), timed through ``runtime.compiled_step``, or a
    plain keras.Model timed as one eager forward pass per frame. ``dtype`` is the input dtype; the
    model keeps its own dtype policy. Returns median/min/max fps over ``repeats``.
    """
    if min(height, width, frames, repeats) < 1 or warmup < 0:
        raise ValueError("measure_fps: height, width, frames, repeats must be >= 1 and warmup >= 0")
    rng = np.random.default_rng(0)
    if hasattr(model, "cell"):
        step = runtime.compiled_step(model.cell)
        call, sync, synchronised = step.call, step.sync, step.sync_description
        window = rng.random((1, height, width, 3 * (2 * model.m + 1))).astype(dtype)
        states = model.cell.get_initial_state_like(window)
    elif isinstance(model, keras.Model) and model.inputs:
        window = rng.random((1, height, width, int(model.inputs[0].shape[-1]))).astype(dtype)
        states, sync, synchronised = [], runtime.sync, "keras.ops.convert_to_numpy on outputs"

        def call(x, s):
            return model(x, training=False), s
    else:
        raise TypeError("expected a DeblurNet (with .cell and .m) or a built functional/Sequential keras.Model")
    fps = [frames / t for t in runtime.time_stream(call, [window], states, sync, frames, repeats, warmup)[1]]
    median = statistics.median(fps)
    return {
        **device_info(),
        "fps_median": median,
        "fps_min": min(fps),
        "fps_max": max(fps),
        "ms_per_frame": 1000.0 / median,
        "repeats": repeats,
        "frames": frames,
        "warmup": warmup,
        "height": height,
        "width": width,
        "dtype": dtype,
        "synchronised": f"every output frame and state: {synchronised}",
    }
