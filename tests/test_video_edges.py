"""The deblur command's rough edges: odd sizes play in browsers, audio is kept, side-by-side is labelled,
fps is printed rounded, frames are read by the benchmark's one reader, progress output suits logs."""

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import keras
import numpy as np
import pytest
from PIL import Image

import bench_deblur.datasets
import bench_deblur.video
from bench_deblur.cli import main
from bench_deblur.progress import keras_verbose, progress_bar
from bench_deblur.registry import build_model
from bench_deblur.video import labelled


@pytest.fixture(scope="module")
def identity(tmp_path_factory) -> Path:
    """The identity model (output = input), so every written pixel can be checked."""
    path = tmp_path_factory.mktemp("model") / "identity.keras"
    keras.utils.set_random_seed(0)
    build_model("identity", m=1).save(path)
    return path


def ramp(n: int, h: int, w: int) -> np.ndarray:
    """(n, h, w, 3) uint8 frames, smooth so H.264 keeps them within a few levels."""
    yy, xx = np.mgrid[:h, :w]
    return np.stack([np.dstack([xx * 60 // w + 60, yy * 60 // h + 90, np.full((h, w), 40 + 60 * i)]) for i in range(n)]).astype(np.uint8)


def write_video(path: Path, frames: np.ndarray, fps: float = 10, audio: bool = False) -> Path:
    """An H.264 yuv444p video (any size), with a 440 Hz AAC track when ``audio``."""
    n, h, w, _ = frames.shape
    sound = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={n / fps}", "-c:a", "aac"] if audio else []
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
         "-r", str(fps), "-i", "-", *sound, "-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv444p", str(path)],
        input=frames.tobytes(), check=True, capture_output=True,
    )
    return path


def deblur(capsys, *args) -> tuple[int, str, str]:
    code = main(["-q", "deblur", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_odd_size_mp4_is_padded_to_yuv420p_and_says_so(identity, tmp_path, capsys):
    frames = ramp(3, 7, 9)
    code, out, err = deblur(capsys, write_video(tmp_path / "in.mp4", frames), "-o", tmp_path / "out.mp4", "--model", identity)
    assert code == 0
    meta = iio.immeta(tmp_path / "out.mp4", plugin="FFMPEG")
    assert meta["pix_fmt"].startswith("yuv420p") and "audio_codec" not in meta  # no audio in, none out
    assert out.strip() == f"3 frames, 10x8, 10 fps -> {tmp_path / 'out.mp4'}"
    assert err.strip().splitlines() == ["note: 9x7 frames padded to 10x8 by repeating the last row or column: "
                                        "H.264 in yuv420p, the format browsers play, needs an even width and height"]
    written = np.stack(list(iio.imiter(tmp_path / "out.mp4", plugin="FFMPEG"))).astype(int)
    assert written.shape == (3, 8, 10, 3)
    padded = np.pad(frames, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="edge").astype(int)
    assert np.abs(written - padded).max() <= 8  # 4:2:0 chroma costs a few levels; the content is the input's


def test_audio_is_carried_over_and_trimmed_to_the_frames(identity, tmp_path, capsys):
    src = write_video(tmp_path / "in.mp4", ramp(4, 6, 8), audio=True)
    code, _, err = deblur(capsys, src, "-o", tmp_path / "out.mp4", "--model", identity, "--max-frames", "2")
    assert code == 0 and err == ""
    meta = iio.immeta(tmp_path / "out.mp4", plugin="FFMPEG")
    assert meta["audio_codec"] == "aac" and meta["duration"] == pytest.approx(0.2, abs=0.05)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no silent temporary left behind

    code, _, err = deblur(capsys, src, "-o", tmp_path / "fast.mkv", "--model", identity, "--fps", "25")
    assert code == 0 and "audio_codec" not in iio.immeta(tmp_path / "fast.mkv", plugin="FFMPEG")
    assert err.startswith(f"note: the audio of {src} was left out: --fps 25 changes the timing")
    code, _, err = deblur(capsys, src, "-o", tmp_path / "frames", "--model", identity)
    assert code == 0 and err.startswith(f"note: the audio of {src} was left out: PNG frames cannot hold sound")


def test_side_by_side_is_labelled_where_the_label_fits(identity, tmp_path, capsys):
    h, w = 48, 64
    folder = tmp_path / "in"
    folder.mkdir()
    frames = ramp(2, h, w)
    for i, frame in enumerate(frames):
        iio.imwrite(folder / f"{i}.png", frame)
    assert deblur(capsys, folder, "-o", tmp_path / "out", "--model", identity, "--side-by-side")[0] == 0
    out = iio.imread(tmp_path / "out" / "000000.png")
    assert out.shape == (h, 2 * w, 3)
    for half, text in ((out[:, :w], "blurry"), (out[:, w:], "identity")):
        np.testing.assert_array_equal(half, labelled(frames[0], text))
        changed = (half != frames[0]).any(-1)
        rows, cols = np.nonzero(changed)
        assert changed.any() and rows.max() < h / 3 and cols.min() == 0  # a label box in the top-left corner
        np.testing.assert_array_equal(half[h // 3:], frames[0][h // 3:])  # the picture itself untouched
    assert not np.array_equal(labelled(frames[0], "blurry"), labelled(frames[0], "identity"))
    np.testing.assert_array_equal(labelled(frames[0][:7, :9], "blurry"), frames[0][:7, :9])  # too small: no label


def test_fps_is_printed_rounded_and_never_none(identity, tmp_path, capsys):
    images = [Image.fromarray(f) for f in ramp(3, 6, 8)]
    images[0].save(tmp_path / "in.gif", save_all=True, append_images=images[1:], duration=70, loop=0)
    code, out, _ = deblur(capsys, tmp_path / "in.gif", "-o", tmp_path / "out.gif", "--model", identity)
    assert code == 0 and out.startswith("3 frames, 8x6, 14.3 fps -> ")
    code, out, _ = deblur(capsys, tmp_path / "in.gif", "-o", tmp_path / "frames", "--model", identity)
    assert code == 0 and out.startswith("3 frames, 8x6 -> ") and " fps" not in out and "None" not in out


def test_image_files_are_read_by_the_datasets_frame_reader():
    assert bench_deblur.video.read_frame is bench_deblur.datasets.read_frame


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        """Nothing is buffered: ``write`` keeps the text at once."""


@pytest.mark.parametrize("tty", [True, False])
def test_progress_is_live_on_a_terminal_and_plain_in_a_log(monkeypatch, tty):
    stream = _Stream(tty)
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(sys, "stderr", stream)
    assert keras_verbose(True) == (1 if tty else 2) and keras_verbose(False) == 0  # 2: one line per epoch
    assert list(progress_bar(range(3), desc="x")) == [0, 1, 2]
    assert ("\r" in stream.text) == tty  # a redrawn bar only on a terminal; nothing at all in a log
    assert list(progress_bar(range(3), desc="x", progress=False)) == [0, 1, 2]
    assert ("\r" in stream.text) == tty and (stream.text == "") != tty
