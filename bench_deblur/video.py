"""Deblur your own footage online: a video file or a frame folder in, a video or PNG frames out.

Frames are read lazily (``imageio.v3.imiter`` with imageio-ffmpeg for videos,
Pillow for GIFs, one file at a time for folders), pushed through
``baselines.base.Streamer`` and every deblurred frame is written as soon as it
comes out, so memory depends on the frame size and never on the video's length.

Input frames become float32 RGB in [0, 1]: grey frames are repeated to three
channels, an alpha channel (RGBA, grey + alpha) is dropped, integer frames
(uint8, uint16, ...) are divided by their type's maximum, float frames are
clipped to [0, 1]. Outputs are 8-bit.

Outputs keep the input's frame count, size and timing:
- ``.mp4 .m4v .mov .mkv .avi``: H.264 (CRF 10, near lossless) through imageio-ffmpeg with
  ``macro_block_size=1`` so no frame is resized; yuv420p when width and height are even
  (plays everywhere), yuv444p otherwise because 4:2:0 chroma needs even sizes.
- ``.gif``: written frame by frame (Pillow's own GIF saver holds every frame
  until the end), each frame with its own 256-colour palette and the input
  GIF's per-frame duration and loop count.
- a path without a suffix, or an existing folder: PNG frames ``000000.png``,
  ``000001.png``, ...; numbered frames left over from an earlier, longer run are
  removed at the end so the folder holds exactly this video.
Videos go to a temporary file renamed at the end and each PNG is written
atomically, so an interrupted run never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
import warnings
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Generator, Iterator

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
from PIL import GifImagePlugin, Image
from tqdm import tqdm

from bench_deblur.errors import UserError
from bench_deblur.fileio import atomic_path

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_FPS = 30.0
QUALITY = 8  # imageio-ffmpeg's 0-10 scale; 8 is H.264 CRF 10 (18 is already "visually lossless")

Writer = Callable[[np.ndarray, float], None]  # (uint8 frame (H, W, 3), duration in ms) -> None


@dataclass
class Source:
    """An opened input: its timing, an estimated length for the progress bar, and a frame reader.

    ``read()`` yields ``(frame, duration_ms)``; the duration is only known per
    frame for GIFs (None otherwise). ``loop`` is the GIF loop count to write
    (0 = forever, None = play once).
    """

    fps: float | None
    total: int | None
    loop: int | None
    read: Callable[[], Iterator[tuple[np.ndarray, float | None]]]


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """Any decoded image -> float32 (H, W, 3) in [0, 1]: grey repeated, alpha dropped, integers scaled."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.ndim != 3 or frame.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got shape {frame.shape}")
    frame = frame[..., :1] if frame.shape[-1] < 3 else frame[..., :3]
    if np.issubdtype(frame.dtype, np.integer):
        scaled = frame.astype(np.float32) / np.iinfo(frame.dtype).max
    else:
        scaled = frame.astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(np.clip(scaled, 0.0, 1.0), frame.shape[:2] + (3,)))


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """Float frame in [0, 1] (any float dtype, e.g. bfloat16 model output) -> uint8, rounded."""
    return (np.clip(np.asarray(frame, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _natural_key(path: Path) -> list:
    """Sort frame2 before frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _guarded(frames: Generator, path: Path, expected: str) -> Iterator:
    """Re-raise any decoding error as a one-line UserError naming the input; close the reader when done."""
    try:
        while True:
            try:
                item = next(frames)
            except StopIteration:
                return
            except UserError:
                raise
            except Exception as exc:  # decoders raise OSError, ValueError, struct.error, ...; all mean a bad file.
                raise UserError(f"{path}: {expected} ({_first_line(exc)})") from None
            yield item
    finally:
        frames.close()


def open_source(path: Path) -> Source:
    """Open a video file, a GIF, a single image or a folder of frames (natural sort order)."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder; expected a video file or a folder of frames")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")), key=_natural_key)
        if not files:
            raise UserError(f"{path}: no frames in this folder; expected image files ({', '.join(IMAGE_SUFFIXES)})")
        return _image_source(files)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return _image_source([path])
    if suffix == ".gif":
        return _gif_source(path)
    return _video_source(path)


def _image_plugin(path: Path) -> str:
    """tifffile for TIFF (float and 16-bit RGB images Pillow cannot open), Pillow for the rest."""
    return "tifffile" if path.suffix.lower() in (".tif", ".tiff") else "pillow"


def _image_source(files: list[Path]) -> Source:
    """Frames from image files; every header is checked first, so a size mismatch fails before any work."""
    size = first = None
    for file in files:
        try:
            shape = iio.improps(file, index=0, plugin=_image_plugin(file)).shape
        except Exception as exc:
            raise UserError(f"{file}: not a readable image ({_first_line(exc)})") from None
        if size is None:
            size, first = shape[:2], file
        elif shape[:2] != size:
            raise UserError(f"{file}: frame is {shape[1]}x{shape[0]} pixels, expected {size[1]}x{size[0]} like {first.name}; all frames must have one size")

    def read() -> Iterator[tuple[np.ndarray, None]]:
        for file in files:
            try:
                frame = as_rgb(iio.imread(file, index=0, plugin=_image_plugin(file)))
            except Exception as exc:
                raise UserError(f"{file}: not a readable image ({_first_line(exc)})") from None
            yield frame, None

    return Source(fps=None, total=len(files), loop=0, read=read)


def _gif_source(path: Path) -> Source:
    try:
        meta = iio.immeta(path, index=0, plugin="pillow")
        total = iio.improps(path, index=..., plugin="pillow").n_images
    except Exception as exc:
        raise UserError(f"{path}: not a readable GIF ({_first_line(exc)})") from None
    duration = meta.get("duration")

    def read() -> Iterator[tuple[np.ndarray, float | None]]:
        with iio.imopen(path, "r", plugin="pillow") as reader:
            for i, frame in enumerate(reader.iter()):
                yield as_rgb(frame), reader.metadata(index=i).get("duration")

    fps = 1000.0 / duration if duration else None
    return Source(fps=fps, total=total, loop=meta.get("loop"), read=lambda: _guarded(read(), path, "not a readable GIF"))


def _video_source(path: Path) -> Source:
    try:
        meta = iio.immeta(path, plugin="FFMPEG")
    except Exception as exc:
        raise UserError(f"{path}: not a readable video or image ({_first_line(exc)})") from None
    fps = meta.get("fps")
    fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else None
    duration = meta.get("duration")
    total = round(duration * fps) if fps and duration and math.isfinite(duration) else None

    def read() -> Iterator[tuple[np.ndarray, None]]:
        for frame in iio.imiter(path, plugin="FFMPEG"):
            yield as_rgb(frame), None

    return Source(fps=fps, total=total, loop=0, read=lambda: _guarded(read(), path, "not a readable video"))


def _output_format(output: Path) -> str:
    """'video', 'gif' or 'frames' (a PNG folder), from the path alone."""
    if output.is_dir():
        return "frames"
    suffix = output.suffix.lower()
    if suffix == ".gif":
        return "gif"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if not suffix:
        return "frames"
    raise UserError(f"{output}: expected a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder for PNG frames")


def _check_output(output: Path, fmt: str, source: Path) -> None:
    """Refuse an output that would overwrite the input or cannot be written, before any work is done."""
    if output.resolve() == source.resolve() or (output.exists() and os.path.samefile(output, source)):
        raise UserError(f"{output}: output is the input; expected a different path")
    folder = output if fmt == "frames" else output.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{output}: cannot write here, {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{output}: permission denied, cannot write in {existing}")


@contextlib.contextmanager
def _video_writer(path: Path, fps: float) -> Iterator[Writer]:
    """H.264 via imageio-ffmpeg into a temporary file, renamed over ``path`` on success."""
    with atomic_path(path) as tmp:
        writer = None

        def write(frame: np.ndarray, duration_ms: float) -> None:
            nonlocal writer
            if writer is None:
                h, w = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(
                    str(tmp), (w, h), fps=fps, codec="libx264", quality=QUALITY, macro_block_size=1,
                    pix_fmt_out="yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p", ffmpeg_log_level="error",
                )
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))

        try:
            yield write
        finally:
            if writer is not None:
                writer.close()


@contextlib.contextmanager
def _gif_writer(path: Path, loop: int | None) -> Iterator[Writer]:
    """A GIF streamed frame by frame, each frame with its own palette and duration."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        first = True

        def write(frame: np.ndarray, duration_ms: float) -> None:
            nonlocal first
            image = Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
            if first:
                header, _ = GifImagePlugin.getheader(image, info={} if loop is None else {"loop": loop})
                f.writelines(header)
                first = False
            f.writelines(GifImagePlugin.getdata(image, duration=round(duration_ms), include_color_table=True))

        yield write
        f.write(b";")  # GIF trailer


@contextlib.contextmanager
def _frames_writer(folder: Path) -> Iterator[Writer]:
    """PNG frames 000000.png, ... each written atomically; stale higher-numbered frames removed at the end."""
    count = 0

    def write(frame: np.ndarray, duration_ms: float) -> None:
        nonlocal count
        with atomic_path(folder / f"{count:06d}.png") as tmp:
            iio.imwrite(tmp, frame)
        count += 1

    yield write
    for stale in folder.glob("*.png"):
        if re.fullmatch(r"\d{6,}\.png", stale.name) and int(stale.stem) >= count:
            stale.unlink()


def load_for_inference(model: str, dtype: str = "float32"):
    """Load a ``.keras`` file or run folder and switch it to ``dtype`` compute (weights stay float32).

    The saved model pins every layer's dtype policy to float32, so a global
    ``keras.config.set_dtype_policy`` would not reach it; each layer gets a
    mixed policy instead. One small step is run so that a backend or device that
    cannot compute in ``dtype`` fails here with a clear message, not mid-video.
    """
    import keras

    from baselines.base import Streamer
    from bench_deblur.registry import load_model

    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    net = load_model(model)
    if dtype == "float32":
        return net
    for layer in net._flatten_layers(include_self=True):
        layer.dtype_policy = f"mixed_{dtype}"
    k = 4 * net.cell.size_multiple
    window = np.zeros((1, k, k, 3 * (2 * net.m + 1)), dtype="float32")
    try:
        keras.ops.convert_to_numpy(Streamer(net).step_fn(window, None)[0])
    except Exception as exc:  # each backend reports a missing low-precision kernel differently
        raise UserError(f"--dtype {dtype}: the {keras.backend.backend()} backend cannot run {model} in {dtype} here ({_first_line(exc)})") from None
    return net


def deblur_video(
    input: Path, output: Path, model: str, side_by_side: bool = False, max_frames: int | None = None,
    dtype: str = "float32", fps: float | None = None, progress: bool = True,
) -> dict:
    """Deblur ``input`` (video, GIF, image or frame folder) into ``output`` frame by frame.

    ``fps`` overrides the output frame rate (default: the input's, else 30 for
    frame folders); for GIF output it replaces the per-frame durations.
    Returns ``{"input", "output", "format", "frames", "size": [H, W], "fps", "dtype", "seconds"}``,
    ``size`` being the written frames' size and ``fps`` the output frame rate
    (None for PNG frames, the mean rate for a GIF).
    """
    from baselines.base import Streamer

    input, output = Path(input), Path(output)
    if max_frames is not None and max_frames < 1:
        raise UserError(f"--max-frames {max_frames}: expected a positive integer")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UserError(f"--fps {fps}: expected a positive frame rate")
    source = open_source(input)
    fmt = _output_format(output)
    _check_output(output, fmt, input)
    streamer = Streamer(load_for_inference(model, dtype))

    rate = fps or source.fps or DEFAULT_FPS
    if fmt == "video":
        sink = _video_writer(output, rate)
    elif fmt == "gif":
        sink = _gif_writer(output, source.loop)
    else:
        sink = _frames_writer(output)
    total = min(filter(None, (source.total, max_frames)), default=None)
    pending: deque = deque()  # (input frame for side-by-side, duration) of frames inside the look-ahead
    written, total_ms, size, start = 0, 0.0, None, time.perf_counter()
    try:
        with warnings.catch_warnings(), contextlib.closing(source.read()) as frames, sink as write, tqdm(total=total, unit="frame", desc="deblur", disable=not progress) as bar:
            # JAX warns on every fork; subprocess execs ffmpeg straight from C in the child, which is safe.
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)

            def emit(out: np.ndarray) -> None:
                nonlocal written, total_ms, size
                shown, duration = pending.popleft()
                frame = to_uint8(out)
                if side_by_side:
                    frame = np.concatenate([shown, frame], axis=1)
                write(frame, duration)
                written, total_ms, size = written + 1, total_ms + duration, frame.shape[:2]
                bar.update()

            for frame, duration in islice(frames, max_frames):
                pending.append((to_uint8(frame) if side_by_side else None, 1000.0 / rate if fps or duration is None else duration))
                for out in streamer.push(frame):
                    emit(out)
            for out in streamer.flush():
                emit(out)
            if not written:
                raise UserError(f"{input}: no frames could be read; expected a video with at least one frame")
    except OSError as exc:
        raise UserError(f"{output}: could not write ({_first_line(exc)})") from None
    return {
        "input": str(input), "output": str(output), "format": fmt, "frames": written, "size": list(size),
        "fps": None if fmt == "frames" else (1000.0 * written / total_ms if fmt == "gif" and total_ms else rate),
        "dtype": dtype, "seconds": round(time.perf_counter() - start, 3),
    }
