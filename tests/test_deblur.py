"""The deblur command: N frames in, N out, same size and timing, for every input kind; one-line errors."""

import os
import shutil
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import keras
import numpy as np
import pytest
from PIL import Image

import bench_deblur.streaming
from bench_deblur.cli import main
from bench_deblur.registry import build_model
from bench_deblur.video import deblur_video, from_uint8


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny STRCNN+DTB (.keras file and a run folder) and the identity model (output = input)."""
    root = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    build_model("strcnn_dtb", m=1, width=0.125).save(root / "tiny.keras")
    (root / "run").mkdir()
    shutil.copy(root / "tiny.keras", root / "run" / "model.keras")
    build_model("identity", m=1).save(root / "identity.keras")
    return {"tiny": root / "tiny.keras", "run": root / "run", "identity": root / "identity.keras"}


def pattern(n: int, h: int, w: int) -> np.ndarray:
    """A moving stripe pattern, distinct in every frame: (n, h, w, 3) uint8."""
    yy, xx = np.mgrid[:h, :w]
    frames = [np.sin((xx + 2 * yy + 3 * i) / 4.0) * 0.5 + 0.5 for i in range(n)]
    return (np.stack(frames)[..., None] * np.array([250, 170, 90])).astype(np.uint8)


def write_mp4(path: Path, n: int, h: int = 33, w: int = 47, fps: float = 25) -> Path:
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1, pix_fmt_out="yuv444p", ffmpeg_log_level="error")
    writer.send(None)
    for frame in pattern(n, h, w):
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def video_info(path: Path) -> tuple[int, tuple[int, int], float]:
    """(frame count, (H, W), fps) as a reader sees them."""
    frames = list(iio.imiter(path, plugin="FFMPEG"))
    return len(frames), frames[0].shape[:2], iio.immeta(path, plugin="FFMPEG")["fps"]


def gif_info(path: Path) -> tuple[np.ndarray, list[int]]:
    with iio.imopen(path, "r", plugin="pillow") as f:
        frames = [from_uint8(frame) for frame in f.iter(mode="RGB")]
        durations = [f.metadata(index=i)["duration"] for i in range(len(frames))]
    return np.stack(frames), durations


def deblur(*args) -> int:
    return main(["-q", "deblur", *map(str, args)])


@pytest.mark.parametrize("n", [1, 2, 7])
def test_mp4_keeps_frame_count_size_and_rate(models, tmp_path, n):
    src = write_mp4(tmp_path / "in.mp4", n)
    assert deblur(src, "-o", tmp_path / "out.mp4", "--model", models["tiny"]) == 0
    assert video_info(tmp_path / "out.mp4") == (n, (34, 48), 25.0)  # odd sizes padded for yuv420p
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_run_folder_model_and_other_containers(models, tmp_path):
    src = write_mp4(tmp_path / "in.mp4", 4, h=20, w=30, fps=12)
    for out in ("out.mov", "out.mkv", "out.avi"):
        assert deblur(src, "-o", tmp_path / out, "--model", models["run"]) == 0
        assert video_info(tmp_path / out) == (4, (20, 30), 12.0)


def test_max_frames_and_summary(models, tmp_path):
    src = write_mp4(tmp_path / "in.mp4", 6)
    summary = deblur_video(src, tmp_path / "out.mp4", str(models["tiny"]), max_frames=3, progress=False)
    assert {k: summary[k] for k in ("frames", "size", "fps", "output", "format")} == {
        "frames": 3, "size": [34, 48], "fps": 25.0, "output": str(tmp_path / "out.mp4"), "format": "video"}
    assert video_info(tmp_path / "out.mp4")[0] == 3


def test_gif_keeps_every_frame_duration_and_content(models, tmp_path):
    frames = pattern(5, 9, 11) // 32 * 32  # few colours, so the GIF palette is exact
    durations = [40, 80, 120, 160, 200]
    images = [Image.fromarray(f) for f in frames]
    images[0].save(tmp_path / "in.gif", save_all=True, append_images=images[1:], duration=durations, loop=0)
    assert deblur(tmp_path / "in.gif", "-o", tmp_path / "out.gif", "--model", models["identity"]) == 0
    out, out_durations = gif_info(tmp_path / "out.gif")
    assert out_durations == durations
    np.testing.assert_allclose(out, frames / 255.0, atol=1.5 / 255)
    assert iio.immeta(tmp_path / "out.gif", index=0)["loop"] == 0


def shipped_gif(tmp_path: Path) -> Path:
    """scikit-image's animated GIF when the installed version ships one, else a written stand-in."""
    import skimage.data

    path = Path(skimage.data.__file__).parent / "no_time_for_that_tiny.gif"
    if path.is_file():
        return path
    images = [Image.fromarray(f) for f in pattern(12, 25, 14)]
    images[0].save(tmp_path / "stand_in.gif", save_all=True, append_images=images[1:], duration=70, loop=0)
    return tmp_path / "stand_in.gif"


def test_animated_gif_with_the_learned_model(models, tmp_path):
    src = shipped_gif(tmp_path)
    frames, durations = gif_info(src)
    assert deblur(src, "-o", tmp_path / "out.gif", "--model", models["tiny"]) == 0
    out, out_durations = gif_info(tmp_path / "out.gif")
    assert out.shape == frames.shape and out_durations == durations


def test_frame_folder_grey_rgba_16_bit_natural_order_side_by_side(models, tmp_path):
    h, w = 13, 10
    folder = tmp_path / "frames"
    folder.mkdir()
    levels = {"frame1.png": 40, "frame2.png": 90, "frame3.bmp": 140, "frame10.png": 200}  # natural order
    iio.imwrite(folder / "frame1.png", np.full((h, w), 40, np.uint8))  # grey (H, W)
    iio.imwrite(folder / "frame2.png", np.dstack([np.full((h, w, 3), 90, np.uint8), np.zeros((h, w), np.uint8)]))  # RGBA, alpha 0
    iio.imwrite(folder / "frame3.bmp", np.full((h, w, 3), 140, np.uint8))
    iio.imwrite(folder / "frame10.png", np.full((h, w), 200 * 257, np.uint16))  # 16-bit grey
    (folder / "notes.txt").write_text("not a frame")
    out = tmp_path / "out"
    longer = tmp_path / "longer"
    longer.mkdir()
    for i in range(10):
        iio.imwrite(longer / f"{i}.png", np.zeros((2, 2, 3), np.uint8))
    assert deblur(longer, "-o", out, "--model", models["identity"]) == 0  # an earlier, longer run: 000009.png is stale
    assert deblur(folder, "-o", out, "--model", models["identity"], "--side-by-side") == 0
    written = sorted(p.name for p in out.iterdir() if p.name != ".bench-deblur-frames.json")
    assert written == ["000000.png", "000001.png", "000002.png", "000003.png"]
    for name, level in zip(written, levels.values()):
        frame = iio.imread(out / name)
        assert frame.shape == (h, 2 * w, 3)
        assert (frame == level).all()  # both halves: the input as RGB, and the identity model's output


def test_one_frame_folder_or_image_file(models, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    iio.imwrite(folder / "0.png", pattern(1, 15, 17)[0])
    assert deblur(folder, "-o", tmp_path / "out.gif", "--model", models["tiny"], "--fps", 20) == 0
    out, durations = gif_info(tmp_path / "out.gif")
    assert out.shape == (1, 15, 17, 3) and durations == [50]
    assert deblur(folder / "0.png", "-o", tmp_path / "single", "--model", models["tiny"]) == 0  # one image file
    assert sorted(p.name for p in (tmp_path / "single").iterdir()) == [".bench-deblur-frames.json", "000000.png"]


def test_low_precision_compute(models, tmp_path):
    src = write_mp4(tmp_path / "in.mp4", 3)
    assert deblur(src, "-o", tmp_path / "out.mp4", "--model", models["tiny"], "--dtype", "bfloat16") == 0
    assert video_info(tmp_path / "out.mp4")[:2] == (3, (34, 48))


def test_dtype_the_backend_cannot_run_is_refused(models, tmp_path, capsys, monkeypatch):
    def no_kernel(self, window, states):
        raise TypeError("no kernel for this dtype\nsecond line")

    monkeypatch.setattr(bench_deblur.streaming.Streamer, "step_fn", no_kernel)
    src = write_mp4(tmp_path / "in.mp4", 2)
    assert deblur(src, "-o", tmp_path / "out.mp4", "--model", models["tiny"], "--dtype", "float16") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --dtype float16:")
    assert not (tmp_path / "out.mp4").exists()


def _missing(tmp_path, models):
    return [tmp_path / "missing.mp4", "-o", tmp_path / "out.mp4", "--model", models["tiny"]], tmp_path / "missing.mp4"


def _text_as_mp4(tmp_path, models):
    (tmp_path / "notes.mp4").write_text("not a video")
    return [tmp_path / "notes.mp4", "-o", tmp_path / "out.mp4", "--model", models["tiny"]], tmp_path / "notes.mp4"


def _text_as_png_in_folder(tmp_path, models):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "000.png").write_text("not an image")
    return [tmp_path / "frames", "-o", tmp_path / "out.mp4", "--model", models["tiny"]], tmp_path / "frames" / "000.png"


def _empty_folder(tmp_path, models):
    (tmp_path / "empty").mkdir()
    return [tmp_path / "empty", "-o", tmp_path / "out.mp4", "--model", models["tiny"]], tmp_path / "empty"


def _sizes_differ(tmp_path, models):
    (tmp_path / "frames").mkdir()
    iio.imwrite(tmp_path / "frames" / "a.png", np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(tmp_path / "frames" / "b.png", np.zeros((8, 10, 3), np.uint8))
    return [tmp_path / "frames", "-o", tmp_path / "out", "--model", models["tiny"]], tmp_path / "frames" / "b.png"


def _unknown_model(tmp_path, models):
    return [write_mp4(tmp_path / "in.mp4", 2), "-o", tmp_path / "out.mp4", "--model", tmp_path / "nope.keras"], tmp_path / "nope.keras"


def _parent_is_a_file(tmp_path, models):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "out.mp4"
    return [write_mp4(tmp_path / "in.mp4", 2), "-o", out, "--model", models["tiny"]], out


def _output_is_input(tmp_path, models):
    src = write_mp4(tmp_path / "in.mp4", 2)
    return [src, "-o", tmp_path / "." / "in.mp4", "--model", models["tiny"]], tmp_path / "in.mp4"


def _output_is_input_folder(tmp_path, models):
    (tmp_path / "frames").mkdir()
    iio.imwrite(tmp_path / "frames" / "a.png", np.zeros((8, 8, 3), np.uint8))
    return [tmp_path / "frames", "-o", tmp_path / "frames", "--model", models["tiny"]], tmp_path / "frames"


def _image_suffix_output(tmp_path, models):
    return [
        write_mp4(tmp_path / "in.mp4", 2),
        "-o",
        tmp_path / "out.png",
        "--model",
        models["tiny"],
    ], tmp_path / "out.png"


@pytest.mark.parametrize(
    "case",
    [
        _missing,
        _text_as_mp4,
        _text_as_png_in_folder,
        _empty_folder,
        _sizes_differ,
        _unknown_model,
        _parent_is_a_file,
        _output_is_input,
        _output_is_input_folder,
        _image_suffix_output,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_bad_input_is_one_line_naming_the_path(models, tmp_path, capsys, case):
    args, named = case(tmp_path, models)
    before = sorted(tmp_path.rglob("*"))
    assert main(["deblur", *map(str, args)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(named) in err[0], captured.err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied_is_one_line(models, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        assert (
            main(
                [
                    "deblur",
                    str(write_mp4(tmp_path / "in.mp4", 2)),
                    "-o",
                    str(locked / "out.mp4"),
                    "--model",
                    str(models["tiny"]),
                ]
            )
            == 2
        )
    finally:
        locked.chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "permission denied" in err[0] and str(locked / "out.mp4") in err[0]


def test_a_model_trained_on_the_psnr_loss_loads_where_the_loss_is_not_imported(tmp_path):
    """`deblur` and the sweep's timing load run folders in processes that never import bench_deblur.train."""
    import subprocess
    import sys

    from bench_deblur.train import psnr_loss

    net = build_model("cnn", m=1, width=0.125)
    net.compile(optimizer="adam", loss=psnr_loss)
    net.save(tmp_path / "psnr.keras")
    code = "import sys; from bench_deblur.registry import load_model; load_model(sys.argv[1]); print('loaded')"
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "psnr.keras")], capture_output=True, text=True)
    assert result.stdout.strip() == "loaded", result.stderr[-500:]
