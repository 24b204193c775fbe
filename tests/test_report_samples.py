"""Sample crops for the report: the cells' diagnostics hook, resampled to the frame, read back by the report."""

import json

import imageio.v3 as iio
import keras
import numpy as np
import pytest

from baselines.base import DeblurCell
from bench_deblur.datasets import find_sequences
from bench_deblur.evaluate import save_samples
from bench_deblur.registry import build_model
from bench_deblur.report.load import Run, diagnostic_names, load_samples
from bench_deblur.streaming import Streamer


def small(name, **kwargs):
    keras.utils.set_random_seed(0)
    return build_model(name, m=1, width=0.125, **kwargs)


@pytest.fixture
def sequence(tmp_path):
    """One 5-frame sequence of odd-sized (21x26) frames, native layout."""
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (tmp_path / "seq" / sub).mkdir(parents=True)
        for i in range(5):
            iio.imwrite(tmp_path / "seq" / sub / f"{i:04d}.png", (rng.random((21, 26, 3)) * 255).astype(np.uint8))
    return find_sequences(tmp_path)[0]


def test_diagnostics_hook_is_empty_by_default_and_dtb_reports_its_blend_weight():
    window = np.random.default_rng(1).random((1, 8, 10, 9), dtype=np.float32)
    for name in ("cnn", "strcnn", "dbn", "identity"):
        cell = small(name).cell
        assert cell.diagnostics(window, cell.get_initial_state_like(window)) == {}, name
    assert DeblurCell.diagnostics(None, window, []) == {}
    cell = small("strcnn_dtb").cell
    maps = cell.diagnostics(window, cell.get_initial_state_like(window))
    assert list(maps) == ["blend_weight"]
    w = keras.ops.convert_to_numpy(maps["blend_weight"])
    assert w.shape == (1, 4, 5, cell.body_channels) and 0 <= w.min() and w.max() <= 1


def test_save_samples_stores_maps_at_frame_resolution(sequence, tmp_path):
    model = small("strcnn_dtb")
    path = tmp_path / "samples.npz"
    save_samples(model, sequence, path, crop=16)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    info = json.loads(str(arrays["info"]))
    assert info["diagnostics"] == ["blend_weight"] and info["size"] == 16 and info["frame"] == 2
    top, left = info["top"], info["left"]
    assert (top, left) == (2, 5) and arrays["sharp"].shape == (16, 16, 3)
    # the w map of the step that made frame 2, at half resolution of the padded 22x26 frame
    streamer = Streamer(model)
    frames = np.stack([iio.imread(p) for p in sequence.blur]).astype(np.float32) / 255
    outputs = []
    for out in streamer.run(frames):
        outputs.append(out)
        if len(outputs) == 3:
            half = keras.ops.convert_to_numpy(
                model.cell.diagnostics(streamer.last_window, streamer.last_states)["blend_weight"]
            )[0].mean(axis=-1)
    assert half.shape == (11, 13)
    expected = half[np.arange(top, top + 16) // 2][:, np.arange(left, left + 16) // 2]
    np.testing.assert_allclose(arrays["blend_weight"], expected, rtol=1e-6)
    np.testing.assert_allclose(arrays["output"], np.clip(outputs[2][top : top + 16, left : left + 16], 0, 1), atol=1e-6)


def test_default_crop_is_large_and_maps_are_optional(sequence, tmp_path):
    path = tmp_path / "run" / "samples.npz"
    save_samples(small("strcnn"), sequence, path)
    run = Run(path.parent, {}, {"samples": "samples.npz"}, {}, {}, {})
    arrays = load_samples(run)
    assert arrays["sharp"].shape == (21, 21, 3)  # the whole frame height when it is under 128 px
    assert arrays["info"]["diagnostics"] == [] and diagnostic_names(arrays) == []
