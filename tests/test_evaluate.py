"""Streaming evaluation: batched streams and chunked scores equal each sequence scored whole; frames are read once."""

from __future__ import annotations

import platform
import subprocess
import sys

import imageio.v3 as iio
import keras
import numpy as np
import pytest

from bench_deblur import evaluate, framecache
from bench_deblur.datasets import find_sequences, load_sequence
from bench_deblur.metrics import sequence_metrics
from bench_deblur.registry import build_model
from bench_deblur.streaming import Streamer


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """Three 5-frame 13x17 sequences (odd sizes: padded for the stride-2 cell) and one 4-frame 12x12."""
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    for name, (n, h, w) in {"a": (5, 13, 17), "b": (5, 13, 17), "c": (5, 13, 17), "d": (4, 12, 12)}.items():
        for sub in ("blur", "sharp"):
            (root / name / sub).mkdir(parents=True)
            for k in range(n):
                iio.imwrite(root / name / sub / f"{k}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return root


def test_streamer_steps_a_batch_of_videos_as_each_alone():
    keras.utils.set_random_seed(0)
    model = build_model("strcnn_dtb", m=2, width=0.125)
    videos = np.random.default_rng(1).random((3, 4, 10, 7, 3), dtype=np.float32)
    together = np.stack(list(Streamer(model).run(videos.transpose(1, 0, 2, 3, 4))), axis=1)
    for video, out in zip(videos, together):
        np.testing.assert_allclose(out, np.stack(list(Streamer(model).run(video))), atol=1e-5)


def test_streamed_scores_equal_whole_sequence_scores(split, monkeypatch):
    """Batches of 2 streams (so a, b step together, c alone) and scores in chunks of 2 frames."""
    monkeypatch.setattr(evaluate, "STEP_PIXELS", 2 * 13 * 17)
    monkeypatch.setattr(evaluate, "SCORE_PIXELS", 2 * 2 * 13 * 17)
    keras.utils.set_random_seed(0)
    model = build_model("strcnn_dtb", m=1, width=0.125)
    result = evaluate.evaluate_splits(model, {7: split}, progress=False)["per_tau"]["7"]
    assert list(result["sequences"]) == ["a", "b", "c", "d"]
    for seq in find_sequences(split):
        blur, sharp = load_sequence(seq)
        whole = sequence_metrics(np.stack(list(Streamer(model).run(blur))), sharp)
        got = result["sequences"][seq.name]
        assert got["psnr_frames"] == pytest.approx(whole["psnr_frames"], abs=1e-3) and got["frames"] == len(blur)
        assert (got["psnr"], got["ssim"], got["temporal"]) == pytest.approx((whole["psnr"], whole["ssim"], whole["temporal"]), abs=1e-5)
        floor = sequence_metrics(blur, sharp)  # the blurry input: no model, so identical scores
        assert {**result["blurry_sequences"][seq.name], "temporal": None} == {**floor, "temporal": None}
        assert result["blurry_sequences"][seq.name]["temporal"] == pytest.approx(floor["temporal"], rel=1e-12)


def test_a_second_evaluation_reads_no_frame_files(split, monkeypatch):
    model = build_model("identity")
    first = evaluate.evaluate_splits(model, {7: split}, progress=False)
    monkeypatch.setattr(framecache, "read_frame", lambda path: pytest.fail(f"decoded {path} again"))
    assert evaluate.evaluate_splits(model, {7: split}, progress=False) == first


FREED = r"""
import os, sys
import numpy as np
from bench_deblur import cli
cli._backend(cli.build_parser().parse_args(sys.argv[1:]))
def rss_mib():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) // 1024
before = rss_mib()
for _ in range(3):
    frame = np.ones(3 * 2**20)  # 24 MiB, a 720p float64 frame: by default glibc keeps it after the first free
    del frame
print(os.environ.get("TF_ONEDNN_USE_SYSTEM_ALLOCATOR"), rss_mib() - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's mmap threshold is glibc's")
@pytest.mark.parametrize(
    "command", [["evaluate", "model.keras", "--data", "x"], ["deblur", "in.mp4", "-o", "out.mp4", "--model", "m.keras"]]
)
def test_streaming_commands_give_freed_frame_buffers_back(command):
    """evaluate and deblur set both allocators so a freed frame-sized buffer leaves the process (1,602 -> 1,371 MiB at 720p)."""
    done = subprocess.run([sys.executable, "-c", FREED, *command], capture_output=True, text=True, check=True)
    allocator, kept_mib = done.stdout.split()
    assert allocator == "1"
    assert int(kept_mib) < 8


LEAN = r"""
import sys
from bench_deblur import cli
cli._backend(cli.build_parser().parse_args(sys.argv[1:]))
loaded = sorted(name for name in ("jax", "matplotlib", "pandas") if name in sys.modules)
import pandas  # importable again once the backend is up
print(",".join(loaded) or "none")
"""


@pytest.mark.parametrize(
    "command, loaded",
    [
        (["evaluate", "model.keras", "--data", "x"], "none"),
        (["deblur", "in.mp4", "-o", "out.mp4", "--model", "m.keras"], "none"),
        (
            ["train", "cnn", "--out", "x"],
            "pandas",
        ),  # Keras loads it at import when installed (it is: the report needs it)
    ],
)
def test_streaming_commands_leave_out_what_tensorflow_and_keras_import_optionally(command, loaded):
    """160 MiB of a 720p evaluation's 1.5 GB: jax (tf.lite), pandas and matplotlib (Keras) are never used there."""
    done = subprocess.run([sys.executable, "-c", LEAN, *command], capture_output=True, text=True, check=True)
    assert loaded in done.stdout.split()[-1].split(",")


def test_optional_imports_are_left_out_only_inside_the_block(tmp_path, monkeypatch):
    from bench_deblur.runtime import without_optional_imports

    (tmp_path / "optional_pkg_x.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with without_optional_imports(["optional_pkg_x", "os"]):
        with pytest.raises(ImportError):
            import optional_pkg_x  # noqa: F401
        import os  # noqa: F401  # imported before the block: untouched
    import optional_pkg_x

    assert optional_pkg_x.VALUE == 1


def test_streamer_without_carried_state_is_each_frame_alone():
    """The state ablation: with m = 0 and the state reset every frame, frame n is the model on frame n alone."""
    keras.utils.set_random_seed(0)
    model = build_model("strcnn_dtb", m=0, width=0.125)
    video = np.random.default_rng(2).random((4, 10, 8, 3), dtype=np.float32)
    ablated = np.stack(list(Streamer(model, carry_state=False).run(video)))
    alone = np.concatenate([keras.ops.convert_to_numpy(model(video[None, n : n + 1]))[0] for n in range(len(video))])
    np.testing.assert_allclose(ablated, alone, atol=1e-5)
    carried = np.stack(list(Streamer(model).run(video)))
    np.testing.assert_allclose(carried[0], alone[0], atol=1e-5)  # the first frame starts from the initial state anyway
    assert not np.allclose(carried[1:], alone[1:], atol=1e-4)  # later frames use the memory


@pytest.mark.parametrize(
    "name, recurrent", [("cnn", False), ("strcnn", True), ("strcnn_dtb", True), ("dbn", False), ("identity", False)]
)
def test_controls_ablation_and_per_frame_maps(split, name, recurrent):
    """Controls stay out of per_tau and the mean; only recurrent cells are ablated; DTB's weight is kept per frame."""
    keras.utils.set_random_seed(0)
    model = build_model(name, m=1, width=0.125)
    sequences = find_sequences(split)
    info = {"label": "a control", "tau": None}
    result = evaluate.evaluate_splits(
        model, {7: split}, progress=False, controls={"other": (info, sequences[:2])}, state_ablation=True
    )
    assert list(result["per_tau"]) == ["7"] and result["mean"]["psnr"] == result["per_tau"]["7"]["psnr"]
    control = result["controls"]["other"]
    assert control["label"] == "a control" and list(control["sequences"]) == ["a", "b"]
    assert control["sequences"]["a"] == result["per_tau"]["7"]["sequences"]["a"]  # same frames, same scores
    assert ("state_ablation" in result) == recurrent
    if recurrent:
        ablated = result["state_ablation"]["per_tau"]["7"]["sequences"]
        assert list(ablated) == ["a", "b", "c", "d"] and ablated["d"]["frames"] == 4
        assert ablated["a"]["psnr_frames"][0] == pytest.approx(
            result["per_tau"]["7"]["sequences"]["a"]["psnr_frames"][0]
        )
    maps = result.get("diagnostics", {})
    if name == "strcnn_dtb":
        weights = maps["blend_weight"]
        assert sorted(weights) == ["7", "other"] and [len(v) for v in weights["7"].values()] == [5, 5, 5, 4]
        assert all(0 <= w <= 1 for v in weights["7"].values() for w in v)
    else:
        assert maps == {}
