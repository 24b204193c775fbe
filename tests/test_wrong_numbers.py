"""No wrong number without a word: inputs that used to be scored wrongly, silently, now convert or say why.

CMYK and out-of-range float frames, a corrupted or stale frame cache, a bad ``checkpoint.json``,
and runs whose metrics are non-finite or inconsistent in the report. Every input is made here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench_deblur import fileio, framecache
from bench_deblur.datasets import find_sequences, read_frame
from bench_deblur.errors import UserError
from bench_deblur.framecache import BLUR, SHARP, cached_sequence

RNG = np.random.default_rng(0)


# 1. Frames: CMYK is converted to RGB; float frames outside [0, 1] are refused with the range found


def test_cmyk_tiff_reads_as_its_rgb(tmp_path):
    rgb = RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tif")
    assert iio.imread(tmp_path / "cmyk.tif").shape == (9, 7, 4)  # the decoder hands over C, M, Y, K
    np.testing.assert_array_equal(read_frame(tmp_path / "cmyk.tif"), rgb.astype(np.float32) / 255)


def test_cmyk_jpeg_reads_as_pillows_rgb(tmp_path):
    rgb = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        expected = np.asarray(im.convert("RGB")).astype(np.float32) / 255
    np.testing.assert_array_equal(read_frame(tmp_path / "cmyk.jpg"), expected)


def test_rgba_keeps_dropping_alpha(tmp_path):
    rgba = RNG.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    np.testing.assert_array_equal(read_frame(tmp_path / "rgba.png"), rgba[..., :3].astype(np.float32) / 255)


def test_float_frame_in_0_255_is_refused_with_its_range(tmp_path):
    path = tmp_path / "f255.tif"
    frame = np.linspace(0, 255, 9 * 7 * 3, dtype=np.float32).reshape(9, 7, 3)
    iio.imwrite(path, frame)
    with pytest.raises(UserError, match=rf"^{path}: float image with values from 0 to 255; expected values in \[0, 1\]"):
        read_frame(path)


def test_float_frame_with_nan_is_refused(tmp_path):
    frame = RNG.random((9, 7, 3)).astype(np.float32)
    frame[2, 3, 1] = np.nan
    iio.imwrite(tmp_path / "nan.tif", frame)
    with pytest.raises(UserError, match="nan.tif: float image holds NaN or infinite values"):
        read_frame(tmp_path / "nan.tif")


def test_float_frame_in_range_reads_as_is_and_rounding_slack_is_clipped(tmp_path):
    frame = RNG.random((9, 7, 3)).astype(np.float32)
    iio.imwrite(tmp_path / "ok.tif", frame)
    np.testing.assert_array_equal(read_frame(tmp_path / "ok.tif"), frame)
    frame[0, 0] = (1.0 + 1e-4, -1e-4, 0.5)  # a float pipeline's rounding: clipped, as before
    iio.imwrite(tmp_path / "slack.tif", frame)
    assert read_frame(tmp_path / "slack.tif")[0, 0].tolist() == [1.0, 0.0, 0.5]


def test_out_of_range_float_frames_stop_the_frame_cache(tmp_path):
    for sub in ("blur", "sharp"):
        (tmp_path / "seq" / sub).mkdir(parents=True)
        for k in range(2):
            iio.imwrite(tmp_path / "seq" / sub / f"{k}.tif", RNG.random((8, 8, 3)).astype(np.float32) * 255)
    (seq,) = find_sequences(tmp_path)
    with pytest.raises(UserError, match="float image with values from"):
        cached_sequence(seq)


# 2. The frame cache: keyed by content, checked on open


def _sequence(root: Path, frames: int = 3, suffix: str = ".png") -> None:
    for sub in ("blur", "sharp"):
        (root / "seq" / sub).mkdir(parents=True, exist_ok=True)
        for k in range(frames):
            iio.imwrite(root / "seq" / sub / f"{k:03d}{suffix}", RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8))


def _decoded(seq) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([read_frame(f) for f in seq.blur]), np.stack([read_frame(f) for f in seq.sharp])


def test_corrupted_cache_body_of_the_same_size_is_decoded_again(tmp_path):
    _sequence(tmp_path)
    (seq,) = find_sequences(tmp_path)
    first = cached_sequence(seq)
    size = first.path.stat().st_size
    with open(first.path, "r+b") as f:  # the sharp frames' bytes become the blurry ones: PSNR would be infinite
        f.seek(first.offset + first.path.stat().st_size // 2)
        f.write(bytes(64))
    assert first.path.stat().st_size == size
    again = cached_sequence(seq)
    assert again == first and again.path.stat().st_size == size
    blur, sharp = _decoded(seq)
    np.testing.assert_array_equal(again.frames(BLUR, 0, 3), blur)
    np.testing.assert_array_equal(again.frames(SHARP, 0, 3), sharp)


def test_a_flipped_checksum_is_decoded_again(tmp_path, monkeypatch):
    _sequence(tmp_path)
    (seq,) = find_sequences(tmp_path)
    first = cached_sequence(seq)
    with open(first.path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    decoded = []
    real = framecache.read_frame
    monkeypatch.setattr(framecache, "read_frame", lambda path: decoded.append(path) or real(path))
    assert cached_sequence(seq) == first
    assert len(decoded) == 6  # every frame decoded again


def test_source_replaced_with_same_size_and_mtime_is_not_served_stale(tmp_path):
    _sequence(tmp_path, suffix=".bmp")  # uncompressed: any replacement of the same shape has the same size
    (seq,) = find_sequences(tmp_path)
    first = cached_sequence(seq)
    target = seq.sharp[1]
    stat = target.stat()
    new = RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    iio.imwrite(target, new)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p, rsync -t and tar leave it
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    again = cached_sequence(seq)
    assert again.path != first.path
    np.testing.assert_array_equal(again.uint8(SHARP, 1, 2)[0], new)


def test_unchanged_sources_reuse_the_entry_without_decoding(tmp_path, monkeypatch):
    _sequence(tmp_path)
    (seq,) = find_sequences(tmp_path)
    first = cached_sequence(seq)
    monkeypatch.setattr(framecache, "read_frame", lambda path: pytest.fail(f"decoded {path} again"))
    assert cached_sequence(seq) == first
    assert np.load(first.path).shape == (2, 3, 9, 7, 3)  # still a plain .npy (the checksum trails the array)


# 3. checkpoint.json: an epoch of the wrong type or beyond the run is a one-line error


@pytest.mark.parametrize("state", [{"epoch": 999}, {"epoch": "two"}, {"epoch": 0}, {"epoch": -1}, {"epoch": True},
                                   {"epoch": 2.0}, {"epoch": None}, {}, [3], "3"])
def test_checkpoint_epoch_is_checked(tmp_path, state):
    from bench_deblur.config import TrainConfig
    from bench_deblur.train import checkpoint_epoch

    cfg = TrainConfig(steps=24, steps_per_epoch=2)
    path = tmp_path / "checkpoint.json"
    fileio.write_json(path, state)
    with pytest.raises(UserError, match=rf"^{path}: 'epoch' must be an integer from 1 to 12 \(this run trains 24 steps"):
        checkpoint_epoch(path, cfg)
    fileio.write_json(path, {"epoch": 12})
    assert checkpoint_epoch(path, cfg) == 12


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_state_that_does_not_match_the_run(tmp_path):
    """Train 1 epoch of 24 steps' run; then 999, "two" and a claim of all 12 epochs are refused, never 'complete'."""
    from bench_deblur.config import ModelConfig, RunConfig, SynthConfig, preset
    from bench_deblur.datasets import open_dataset
    from bench_deblur.synth import make_dataset
    from bench_deblur.train import CHECKPOINT_STATE, initial_model, train

    data = tmp_path / "data"
    make_dataset(data, SynthConfig(height=32, width=32, frames=6, train_sequences=1, test_sequences=1), progress=False)
    spec = preset("smoke")
    run = RunConfig(run_id="r", preset="smoke", model=ModelConfig("cnn", width=0.125),
                    train=dataclasses.replace(spec.train, steps=24, steps_per_epoch=2), synth=spec.synth)
    folder = tmp_path / "run"
    folder.mkdir()
    dataset = open_dataset(data)
    # stops after epoch 1
    _, finished = train(run, folder, dataset, initial_model(run), progress=False, deadline=time.time() - 1)
    state = folder / CHECKPOINT_STATE
    assert not finished and json.loads(state.read_text()) == {"epoch": 1}
    for bad, words in (({"epoch": 999}, "from 1 to 12"), ({"epoch": "two"}, "from 1 to 12"),
                       ({"epoch": 12}, "has taken 2 steps")):
        fileio.write_json(state, bad)
        with pytest.raises(UserError, match=words) as info:
            train(run, folder, dataset, initial_model(run), progress=False)
        assert str(info.value).startswith(f"{state}: ") and "\n" not in str(info.value)


# 4. report: non-finite and inconsistent runs are left out with a note, and the seed counts say so


def _valid_metrics(per_tau: dict, controls: dict | None = None) -> dict:
    values = {k: [s[k] for s in per_tau.values() if s[k] is not None] for k in ("psnr", "ssim", "temporal")}
    mean = {k: float(np.mean(v)) if v else None for k, v in values.items()}  # as evaluate's _summary
    metrics = {"run_id": "x", "protocol": {"color": "rgb"}, "per_tau": per_tau, "mean": mean,
               "identity_mean": {"psnr": 24.0, "ssim": 0.7, "temporal": 0.03}}
    if controls:
        metrics["controls"] = controls
    return metrics


def _run_folder(root: Path, metrics: dict) -> Path:
    folder = root / "run"
    folder.mkdir(parents=True)
    fileio.write_json(folder / "config.json", {"run_id": "run", "groups": ["main"], "seed": 0,
                                               "model": {"name": "cnn", "m": 1}})
    (folder / "metrics.json").write_text(json.dumps(metrics))  # json.dumps writes NaN and Infinity as given
    return folder


def _scores(psnr: float) -> dict:
    return {"psnr": psnr, "ssim": 0.8, "temporal": None, "blurry": {"psnr": 24.0, "ssim": 0.7, "temporal": None},
            "sequences": {}, "blurry_sequences": {}}


def test_valid_runs_load_with_controls_splits_and_null_temporal(tmp_path):
    from bench_deblur.report.load import load_run

    per_tau = {"7": _scores(27.3), "9": _scores(26.1), "11": _scores(25.05)}
    controls = {"steady": {**_scores(40.0), "label": "steady", "tau": 11}}  # outside the mean
    run = load_run(_run_folder(tmp_path / "taus", _valid_metrics(per_tau, controls)))
    assert run.mean["psnr"] == pytest.approx(26.15) and math.isnan(run.mean["temporal"])
    run = load_run(_run_folder(tmp_path / "named", _valid_metrics({"test": _scores(29.5)})))  # a public dataset
    assert not run.by_tau and run.mean["psnr"] == 29.5


def test_evaluates_own_metrics_always_pass(tmp_path):
    """What ``evaluate_splits`` writes (tau splits, controls, a named split) is consistent by construction."""
    from bench_deblur.config import SynthConfig
    from bench_deblur.datasets import open_dataset
    from bench_deblur.evaluate import evaluate_splits
    from bench_deblur.registry import build_model
    from bench_deblur.report.load import _check_numbers
    from bench_deblur.synth import make_dataset

    make_dataset(tmp_path / "d", SynthConfig(height=32, width=32, frames=4, train_sequences=1, test_sequences=2),
                 progress=False)
    test = open_dataset(tmp_path / "d")
    model = build_model("identity")
    splits = test.test_splits()
    assert len(splits) > 1 and test.control_splits()  # taus and controls
    for found in (evaluate_splits(model, splits, controls=test.control_splits(), progress=False),
                  evaluate_splits(model, {"test": next(iter(splits.values()))}, progress=False)):
        metrics = json.loads(json.dumps(found))
        _check_numbers(metrics, tmp_path / "metrics.json")


@pytest.mark.parametrize("edit, words", [
    (lambda m: m["per_tau"]["9"].update(psnr=math.nan), "non-finite metric per_tau.9.psnr = nan"),
    (lambda m: m["per_tau"]["7"]["blurry"].update(ssim=math.inf), "non-finite metric per_tau.7.blurry.ssim = inf"),
    (lambda m: m.update(cost={"runtime": [1.0, -math.inf]}), "non-finite metric cost.runtime.1 = -inf"),
    (lambda m: m["mean"].update(psnr=99.0), "inconsistent metric: mean.psnr = 99.0 but the mean of its per-tau psnr"),
    (lambda m: m["mean"].update(ssim=None), "inconsistent metric: mean.ssim = None"),
    (lambda m: m["mean"].update(temporal=0.5),
     "inconsistent metric: mean.temporal = 0.5 but the mean of its per-tau temporal values is none"),
])
def test_bad_numbers_leave_the_run_out_with_a_note(tmp_path, edit, words):
    from bench_deblur.report.load import load_runs

    metrics = _valid_metrics({"7": _scores(27.3), "9": _scores(26.1), "11": _scores(25.05)})
    edit(metrics)
    _run_folder(tmp_path / "results", metrics)
    other = _valid_metrics({"7": _scores(27.0), "9": _scores(26.0), "11": _scores(25.0)})
    folder = _run_folder(tmp_path / "other", other)
    folder.rename(tmp_path / "results" / "run2")
    with pytest.warns(UserWarning, match="run left out"):
        runs, skipped = load_runs(tmp_path / "results", progress=False)
    assert [r.path.name for r in runs] == ["run2"]
    assert len(skipped) == 1 and words in skipped[0] and str(tmp_path / "results" / "run" / "metrics.json") in skipped[0]


@pytest.mark.slow
def test_report_leaves_out_a_nan_run_and_an_edited_mean_and_counts_seeds(tmp_path):
    """The issue's cases on a fabricated sweep: the headline and the seed counts come from the intact runs only."""
    from test_report import fabricate

    from bench_deblur.report import build_report

    results = fabricate(tmp_path, groups=("main",))
    nan_run, edited_run = results / "cnn-m1-s1" / "metrics.json", results / "strcnn-m1-s2" / "metrics.json"
    metrics = json.loads(nan_run.read_text())
    metrics["per_tau"]["9"]["sequences"]["seq0"]["psnr"] = math.nan
    nan_run.write_text(json.dumps(metrics))
    metrics = json.loads(edited_run.read_text())
    metrics["mean"]["psnr"] = 99.0
    edited_run.write_text(json.dumps(metrics))
    with pytest.warns(UserWarning):
        report = build_report(results, tmp_path / "out", progress=False)
    text = report.read_text()
    assert "2 left out" in text and "cnn-m1-s1" in text and "strcnn-m1-s2" in text
    table = pd.read_csv(tmp_path / "out" / "tables" / "main_psnr.csv")
    means = table[table["tau"] == "mean"].set_index("label")
    assert means.loc["cnn (m=1)", "n"] == 2 and means.loc["strcnn (m=1)", "n"] == 2
    assert means.loc["strcnn_dtb (m=1)", "n"] == 3
    assert means.loc["strcnn (m=1)", "mean"] == pytest.approx(np.mean([27.5 - 0.5, 27.7 - 0.5]))
    assert table["mean"].max() < 30  # no 99 dB mean pulled into any cell


def _tiff_sequence(root: Path, frames: list[tuple[np.ndarray, np.ndarray]], cmyk: bool = False) -> Path:
    for sub in ("blur", "sharp"):
        (root / "seq" / sub).mkdir(parents=True)
    for k, pair in enumerate(frames):
        for sub, frame in zip(("blur", "sharp"), pair):
            if cmyk:
                Image.fromarray(frame).convert("CMYK").save(root / "seq" / sub / f"{k}.tif")
            else:
                iio.imwrite(root / "seq" / sub / f"{k}.tif", frame)
    return root


def test_cli_scores_cmyk_like_rgb_and_refuses_float_0_255_in_one_line(tmp_path, capsys):
    from bench_deblur.cli import main

    sharp = [RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    pairs = [(np.clip(s.astype(int) + RNG.integers(-20, 21, s.shape), 0, 255).astype(np.uint8), s) for s in sharp]
    scores = {}
    for name, cmyk in (("rgb", False), ("cmyk", True)):
        assert main(["-q", "evaluate", "identity", "--data", str(_tiff_sequence(tmp_path / name, pairs, cmyk))]) == 0
        scores[name] = [line for line in capsys.readouterr().out.splitlines() if "PSNR" in line]
    assert scores["rgb"] and scores["cmyk"] == scores["rgb"]
    floats = [(b.astype(np.float32), s.astype(np.float32)) for b, s in pairs]  # 0..255 stored as float
    assert main(["-q", "evaluate", "identity", "--data", str(_tiff_sequence(tmp_path / "float", floats))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "0.tif: float image with values from" in err[0], err
