"""The PyTorch peer computes the Keras network's function: weights copied, outputs equal over a sequence."""

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is a folder of the repo, not an installed package

from baselines.base import frame_windows  # noqa: E402
from bench_deblur import speed  # noqa: E402
from bench_deblur.registry import build_model  # noqa: E402
from benchmarks.peers import torch_strcnn as peer  # noqa: E402

ROWS = {
    "framework",
    "backend",
    "device",
    "device_type",
    "execution",
    "sync",
    "model",
    "size",
    "batch",
    "dtype",
    "fps_median",
    "tflops",
    "versions",
}


def randomise(model: keras.Model, seed: int) -> None:
    """Random weights everywhere (biases, DTB's beta and zero-initialised convs too), outputs of order 1."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        if len(shape) == 4:
            value = 0.5 * rng.normal(size=shape) / np.sqrt(np.prod(shape) / shape[-1])
        elif len(shape) == 0:
            value = rng.uniform(0.05, 0.6)
        else:
            value = 0.1 * rng.normal(size=shape)
        v.assign(np.asarray(value, dtype="float32"))


def torch_sequence(net, windows: np.ndarray) -> np.ndarray:
    """Step the peer over (B, N, H, W, C) windows, carrying its state; (B, N, H, W, 3) out."""
    x = torch.from_numpy(windows).permute(0, 1, 4, 2, 3)
    states = net.initial_states(x[:, 0])
    outs = []
    with torch.inference_mode():
        for n in range(x.shape[1]):
            out, states = net(x[:, n], states)
            outs.append(out.permute(0, 2, 3, 1).numpy())
    return np.stack(outs, axis=1)


@pytest.mark.parametrize(
    "name, m, options, size",
    [
        ("cnn", 1, {}, (16, 12)),
        ("cnn", 2, {}, (22, 18)),
        ("strcnn", 1, {}, (22, 18)),
        ("strcnn", 2, {}, (16, 12)),
        ("strcnn_dtb", 1, {}, (16, 12)),
        ("strcnn_dtb", 2, {}, (22, 18)),
        ("strcnn_dtb", 1, {"global_skip": True}, (22, 18)),
        ("strcnn_dtb", 1, {"placement": "mid_decoder"}, (16, 12)),
    ],
)
def test_outputs_equal_keras_over_a_sequence(name, m, options, size):
    # size (W, H): even, with half sizes even (16x12) and odd (22x18: 11x9 feature maps)
    model = build_model(name, m=m, width=0.25, **options)
    randomise(model, seed=len(name) + m)
    video = np.random.default_rng(m).random((2, 5, size[1], size[0], 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(video))
    got = torch_sequence(peer.from_keras(model), keras.ops.convert_to_numpy(frame_windows(video, m)))
    assert np.abs(expected).max() > 0.1  # a meaningful comparison, not two near-zero outputs
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kernel, stride", [(3, 2), (5, 1), (4, 1), (4, 2)])
@pytest.mark.parametrize("size", [(9, 7), (10, 8)])
def test_same_conv_matches_keras_on_odd_and_even_sizes(kernel, stride, size):
    layer = keras.layers.Conv2D(5, kernel, strides=stride, padding="same", bias_initializer="random_normal")
    x = np.random.default_rng(0).random((1, *size, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(x))
    conv = peer.SameConv2d(3, 5, kernel, stride=stride)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(keras.ops.convert_to_numpy(layer.kernel).transpose(3, 2, 0, 1).copy()))
        conv.bias.copy_(torch.from_numpy(keras.ops.convert_to_numpy(layer.bias)))
        got = conv(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("kernel", [4, 3, 5])  # 4: symmetric crop (the paper's deconv); 3, 5: asymmetric or none
@pytest.mark.parametrize("size", [(5, 4), (6, 7)])
def test_same_transposed_conv_matches_keras(kernel, size):
    layer = keras.layers.Conv2DTranspose(4, kernel, strides=2, padding="same", bias_initializer="random_normal")
    x = np.random.default_rng(1).random((1, *size, 6)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(x))
    deconv = peer.SameConvTranspose2d(6, 4, kernel, 2)
    with torch.no_grad():
        deconv.weight.copy_(torch.from_numpy(keras.ops.convert_to_numpy(layer.kernel).transpose(3, 2, 0, 1).copy()))
        deconv.bias.copy_(torch.from_numpy(keras.ops.convert_to_numpy(layer.bias)))
        got = deconv(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape == (1, 2 * size[0], 2 * size[1], 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_placements_and_unsupported_models():
    from baselines.blocks import PLACEMENTS

    assert peer.PLACEMENTS == PLACEMENTS
    with pytest.raises(TypeError, match="EncoderDecoderCell"):
        peer.from_keras(build_model("identity"))


def test_timing_rows_share_the_keras_results_file(tmp_path):
    out = tmp_path / "speed.json"
    grid = dict(sizes=((16, 12),), batches=(2,), frames=2, warmup=1, repeats=2, width=0.25, out=out, progress=False)
    speed.speed_benchmark(models=("strcnn_dtb",), dtypes=("float32",), **grid)
    result = peer.time_peer(models=("strcnn_dtb",), dtypes=("float32", "bfloat16"), **grid)  # bf16 skipped on the CPU
    data = json.loads(out.read_text())
    assert data["schema"] == speed.RESULTS_SCHEMA
    assert [r["framework"] for r in data["runs"]] == ["keras", "torch"]
    keras_row, torch_row = data["runs"]
    assert set(keras_row) == set(torch_row) >= ROWS
    assert torch_row == result["runs"][0]
    assert torch_row["execution"] == "eager" and torch_row["backend"] == "torch"
    assert torch_row["params"] == keras_row["params"] and torch_row["gmacs_per_frame"] == keras_row["gmacs_per_frame"]
    print(speed.format_table(data["runs"]))
