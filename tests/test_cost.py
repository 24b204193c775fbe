"""MAC counts against hand counts; timing that waits for the device."""

import time

import keras
import numpy as np
import pytest
from keras import layers, ops

from bench_deblur import cost, provenance, runtime


def small_functional() -> keras.Model:
    inp = keras.Input((None, None, 3))
    a = layers.Conv2D(8, 3, padding="same", name="c1")(inp)
    b = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c2")(a)
    c = layers.Conv2DTranspose(8, 4, strides=2, padding="same", name="up")(b)
    d = layers.Add(name="add")([a, c])
    return keras.Model(inp, layers.ReLU(name="relu")(d))


def test_hand_count_functional():
    h, w = 16, 24
    expected = {
        "c1": h * w * 8 * 3 * 3 * 3,  # Hout*Wout*Cout*kh*kw*Cin
        "c2": (h // 2) * (w // 2) * 4 * 3 * 3 * 8 + (h // 2) * (w // 2) * 4,  # + fused ReLU
        "up": (h // 2) * (w // 2) * 4 * 4 * 4 * 8,  # Hin*Win*Cin*kh*kw*Cout
        "add": h * w * 8,
        "relu": h * w * 8,
    }
    out = cost.count_macs(small_functional(), h, w)
    assert out["by_layer"] == expected
    assert out["macs"] == sum(expected.values()) == 166_272
    assert out["gmacs"] == pytest.approx(166_272e-9)


def test_hand_count_sequential_and_size_scaling():
    model = keras.Sequential([keras.Input((None, None, 2)), layers.Conv2D(5, (3, 1)), layers.Activation("linear")])
    # valid padding: 10x10 -> 8x10; the linear activation costs nothing
    assert cost.count_macs(model, 10, 10)["macs"] == 8 * 10 * 5 * 3 * 1 * 2
    start = time.perf_counter()
    big = cost.count_macs(small_functional(), 720, 1280)["macs"]
    assert time.perf_counter() - start < 5  # shapes only: no 720p arithmetic
    assert big == cost.count_macs(small_functional(), 16, 24)["macs"] * (720 * 1280) // (16 * 24)


class Blend(layers.Layer):
    """Custom element-wise layer with its own MAC rule and a conv sublayer counted separately."""

    def build(self, shape):
        self.conv = layers.Conv2D(shape[-1], 1, name="blend_conv")
        self.conv.build(shape)

    def call(self, h, prev):
        w = ops.sigmoid(self.conv(h))
        return w * h + (1 - w) * prev

    def macs(self, input_shapes, output_shape):
        assert input_shapes == [output_shape, output_shape]
        return 4 * int(np.prod(output_shape[1:]))


class ToyCell(layers.Layer):
    """A recurrent cell following the DeblurNet contract: call(window, states) -> (frame, states)."""

    def __init__(self):
        super().__init__()
        self.enc = layers.Conv2D(4, 3, strides=2, padding="same", name="enc")
        self.shared = layers.Conv2D(4, 1, name="shared")
        self.cat = layers.Concatenate(name="cat")
        self.blend = Blend(name="blend")
        self.dec = layers.Conv2DTranspose(3, 2, strides=2, name="dec")

    def get_initial_state_like(self, window):
        return [ops.zeros_like(window[:, ::2, ::2, :4])]

    def call(self, window, states):
        h = self.shared(self.shared(self.enc(window)))  # a layer called twice is counted twice
        h = self.blend(h, states[0])
        return self.dec(self.cat([h, h])[..., :4]), [h]


class ToyNet:
    cell_class = ToyCell

    def __init__(self):
        self.m = 1
        self.cell = self.cell_class()
        window = np.zeros((1, 8, 8, 9), "float32")
        self.cell(window, self.cell.get_initial_state_like(window))


def test_hand_count_recurrent_cell():
    h, w = 8, 12
    half = (h // 2) * (w // 2)
    out = cost.count_macs(ToyNet(), h, w)
    assert out["by_layer"] == {
        "enc": half * 4 * 9 * 9,  # window of 2m+1 = 3 frames = 9 channels
        "shared": 2 * half * 4 * 4,
        "blend": half * 4 * 4,
        "blend/blend_conv": half * 4 * 4,
        "dec": half * 4 * 2 * 2 * 3,
    }
    assert out["uncounted"] == ["cat"]


class PrimingCell(ToyCell):
    """Like ToyCell, but its initial state runs layers of the cell, as a look-ahead buffer is primed once per video."""

    def get_initial_state_like(self, window):
        return [self.shared(self.shared(self.enc(window)))]


class PrimingNet(ToyNet):
    cell_class = PrimingCell


def test_initial_state_is_not_counted_per_frame():
    """The steady state per output frame: work done once per video in get_initial_state_like is left out."""
    assert cost.count_macs(PrimingNet(), 8, 12) == cost.count_macs(ToyNet(), 8, 12)


class Pending:
    """A result an asynchronous device finishes only `delay` seconds after the step returned."""

    synced = 0

    def __init__(self, delay: float):
        self.ready_at = time.perf_counter() + delay

    def __array__(self, dtype=None, copy=None):
        time.sleep(max(0.0, self.ready_at - time.perf_counter()))
        Pending.synced += 1
        return np.zeros(1)


def test_timing_waits_for_the_device():
    Pending.synced = 0
    delay, frames, repeats, warmup = 0.02, 5, 2, 1

    def async_step(window, states):
        return Pending(delay), states  # returns at once, like a queued GPU kernel

    first, times = runtime.time_stream(async_step, [None], [], runtime.sync, frames, repeats, warmup)
    assert len(times) == repeats and first >= delay * 0.95
    assert min(times) >= frames * delay * 0.95
    assert Pending.synced == warmup + frames * repeats


def test_fps_falls_with_resolution():
    model = keras.Sequential(
        [keras.Input((None, None, 3)), layers.Conv2D(16, 3, padding="same"), layers.Conv2D(16, 3, padding="same")]
    )
    small = cost.measure_fps(model, 32, 32, frames=4, repeats=3, warmup=2)
    large = cost.measure_fps(model, 512, 512, frames=4, repeats=3, warmup=2)
    assert large["fps_median"] < small["fps_median"]
    assert small["fps_min"] <= small["fps_median"] <= small["fps_max"]
    for key in ("backend", "device", "dtype", "repeats", "frames", "height", "width", "ms_per_frame"):
        assert key in large
    assert (large["height"], large["width"], large["dtype"]) == (512, 512, "float32")
    assert large["backend"] == keras.backend.backend() and large["device"]


def test_streamer_models_from_the_registry():
    registry = pytest.importorskip("bench_deblur.registry")
    model = registry.build_model("strcnn_dtb", m=1, width=0.125)
    macs = cost.count_macs(model, 32, 48)
    assert any(path.endswith("dtb") for path in macs["by_layer"]) and macs["macs"] > 0
    assert cost.count_macs(model, 64, 96)["macs"] == 4 * macs["macs"]
    fps = cost.measure_fps(model, 32, 48, frames=2, repeats=1, warmup=1)
    assert fps["fps_median"] > 0
    assert cost.count_macs(registry.build_model("identity"), 32, 48)["macs"] == 0


def test_device_info_and_bad_input():
    info = provenance.device_info()
    assert info["backend"] == keras.backend.backend() and info["device"] and info["dtype"] == keras.config.floatx()
    with pytest.raises(TypeError):
        cost.count_macs(object(), 8, 8)
    with pytest.raises(ValueError):
        cost.measure_fps(small_functional(), 8, 8, frames=0)
