"""Deblur your own footage online: a video file or a frame folder in, a video or PNG frames out.

Frames are read lazily (``imageio.v3.imiter`` with imageio-ffmpeg for videos,
Pillow for GIFs, one file at a time for folders), pushed through
``bench_deblur.streaming.Streamer`` and every deblurred frame is written as soon as it
comes out, so memory depends on the frame size and never on the video's length.

Input frames become float32 RGB in [0, 1]: image files go through
``datasets.read_frame``, the benchmark's one frame reader (grey repeated, alpha
dropped, integers divided by their type's maximum); decoded video and GIF
frames arrive as 8-bit RGB and are divided by 255. Outputs are 8-bit.

Outputs keep the input's frame count, size and timing:
- ``.mp4 .m4v .mov .mkv .avi``: H.264 yuv420p (CRF 10, near lossless; what browsers
  play) through imageio-ffmpeg with ``macro_block_size=1`` so no frame is resized.
  4:2:0 chroma needs an even width and height, so an odd size is padded by one
  pixel, repeating the last row or column (no deblurred pixel is lost or resampled;
  a note says so). The input's audio, if any, is copied into the output (re-encoded
  to AAC only where the container refuses the codec), trimmed to the written frames;
  ``--fps`` changes the timing, so then the audio is left out, with a note.
- ``--side-by-side``: the input and the output next to each other, labelled
  "blurry" and the model's name where the label fits in the top third of the frame.
- ``.gif``: written frame by frame (Pillow's own GIF saver holds every frame
  until the end), each frame with its own 256-colour palette and the input
  GIF's per-frame duration and loop count.
- a path without a suffix, or an existing folder: PNG frames ``000000.png``,
  ``000001.png``, ...; into a new or empty folder, or one that holds only frames an
  earlier ``deblur`` wrote there (recorded in ``.bench-deblur-frames.json``), else only
  with ``overwrite``; never into the folder that holds the input. Frames left over
  from an earlier, longer run (as recorded) are removed at the end, so the folder
  holds exactly this video; no other file in it is ever removed.
Videos go to a temporary file renamed at the end and each PNG is written
atomically, so an interrupted run never leaves a truncated file behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import subprocess
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
from PIL import GifImagePlugin, Image, ImageDraw, ImageFont

from bench_deblur.datasets import read_frame
from bench_deblur.datasets.frames import unreadable_image
from bench_deblur.errors import UserError, first_line
from bench_deblur.fileio import atomic_path, write_json
from bench_deblur.progress import progress_bar

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_FPS = 30.0
FRAMES_RECORD = ".bench-deblur-frames.json"  # in a PNG frame folder: how many numbered frames deblur wrote there
QUALITY = 8  # imageio-ffmpeg's 0-10 scale; 8 is H.264 CRF 10 (18 is already "visually lossless")

Writer = Callable[[np.ndarray, float], None]  # (uint8 frame (H, W, 3), duration in ms) -> None


@dataclass
class Source:
    """An opened input: its timing, an estimated length for the progress bar, and a frame reader.

    ``read()`` yields ``(frame, duration_ms)``; the duration is only known per
    frame for GIFs (None otherwise). ``loop`` is the GIF loop count to write
    (0 = forever, None = play once). ``audio`` is the input file when it has a
    sound track to carry over into a video output.
    """

    fps: float | None
    total: int | None
    loop: int | None
    read: Callable[[], Iterator[tuple[np.ndarray, float | None]]]
    audio: Path | None = None


def from_uint8(frame: np.ndarray) -> np.ndarray:
    """A decoded 8-bit RGB frame (what ffmpeg and Pillow's RGB mode give) -> float32 in [0, 1]."""
    return np.asarray(frame, dtype=np.float32) / 255.0


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """Float frame in [0, 1] (any float dtype, e.g. bfloat16 model output) -> uint8, rounded."""
    return (np.clip(np.asarray(frame, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


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
                raise UserError(f"{path}: {expected} ({first_line(exc)})") from None
            yield item
    finally:
        frames.close()


def open_source(path: Path) -> Source:
    """Open a video file, a GIF, a single image or a folder of frames (natural sort order)."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder; expected a video file or a folder of frames")
    if path.is_dir():
        files = sorted(
            (
                p
                for p in path.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
            ),
            key=_natural_key,
        )
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


def image_shape(file: Path) -> tuple[int, ...]:
    """An image file's array shape from its header; an empty or non-image file is a one-line ``UserError``."""
    try:
        return iio.improps(file, index=0, plugin=_image_plugin(file)).shape
    except Exception as exc:  # decoders raise many types; all mean "not a readable image"
        raise unreadable_image(file, exc) from None


def _image_source(files: list[Path]) -> Source:
    """Frames from image files; every header is checked first, so a size mismatch fails before any work."""
    size = first = None
    for file in files:
        shape = image_shape(file)
        if size is None:
            size, first = shape[:2], file
        elif shape[:2] != size:
            raise UserError(
                f"{file}: frame is {shape[1]}x{shape[0]} pixels, expected {size[1]}x{size[0]} like {first.name}; "
                "all frames must have one size"
            )

    def read() -> Iterator[tuple[np.ndarray, None]]:
        for file in files:
            yield read_frame(file), None

    return Source(fps=None, total=len(files), loop=0, read=read)


def _gif_source(path: Path) -> Source:
    try:
        meta = iio.immeta(path, index=0, plugin="pillow")
        total = iio.improps(path, index=..., plugin="pillow").n_images
    except Exception as exc:
        raise UserError(f"{path}: not a readable GIF ({first_line(exc)})") from None
    duration = meta.get("duration")

    def read() -> Iterator[tuple[np.ndarray, float | None]]:
        with iio.imopen(path, "r", plugin="pillow") as reader:
            for i, frame in enumerate(reader.iter(mode="RGB")):  # palette and alpha resolved to 8-bit RGB
                yield from_uint8(frame), reader.metadata(index=i).get("duration")

    fps = 1000.0 / duration if duration else None
    return Source(
        fps=fps, total=total, loop=meta.get("loop"), read=lambda: _guarded(read(), path, "not a readable GIF")
    )


def _video_source(path: Path) -> Source:
    try:
        meta = iio.immeta(path, plugin="FFMPEG")
    except Exception as exc:
        raise UserError(f"{path}: not a readable video or image ({first_line(exc)})") from None
    fps = meta.get("fps")
    fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else None
    duration = meta.get("duration")
    total = round(duration * fps) if fps and duration and math.isfinite(duration) else None

    def read() -> Iterator[tuple[np.ndarray, None]]:
        for frame in iio.imiter(path, plugin="FFMPEG"):  # rgb24
            yield from_uint8(frame), None

    return Source(
        fps=fps,
        total=total,
        loop=0,
        read=lambda: _guarded(read(), path, "not a readable video"),
        audio=path if meta.get("audio_codec") else None,
    )


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


def _check_output(output: Path, fmt: str, source: Path, overwrite: bool = False) -> None:
    """Refuse an output that would overwrite the input or cannot be written, before any work is done."""
    if output.resolve() == source.resolve() or (output.exists() and os.path.samefile(output, source)):
        raise UserError(f"{output}: output is the input; expected a different path")
    folder = output if fmt == "frames" else output.parent
    if fmt == "frames":
        _check_frames_folder(output, source, overwrite)
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{output}: cannot write here, {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{output}: permission denied, cannot write in {existing}")


def _recorded_frames(folder: Path) -> int:
    """How many numbered frames an earlier ``deblur`` recorded writing in ``folder`` (0 without a valid record)."""
    try:
        record = json.loads((folder / FRAMES_RECORD).read_text())
    except (OSError, ValueError):
        return 0
    count = record.get("frames") if isinstance(record, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0


def _ours(name: str, recorded: int) -> bool:
    """A file an earlier ``deblur`` wrote in a frame folder: a recorded frame, the record, or a temporary file of either."""
    if name == FRAMES_RECORD or re.fullmatch(r"\.(\d{6,}|\.bench-deblur-frames)\..*\.tmp\.(png|json)", name):
        return True
    return bool(re.fullmatch(r"\d{6,}\.png", name)) and int(name[:-4]) < recorded


def _check_frames_folder(folder: Path, source: Path, overwrite: bool) -> None:
    """A PNG frame folder must not hold the input, nor (without ``overwrite``) files an earlier ``deblur`` did not write."""
    holder = source.resolve() if source.is_dir() else source.resolve().parent
    if folder.resolve() == holder:
        raise UserError(
            f"-o {folder}: this folder holds the input {source}; expected another folder for the PNG frames "
            "(--overwrite does not change this)"
        )
    if overwrite or not folder.is_dir():
        return
    recorded = _recorded_frames(folder)
    foreign = sorted(p.name for p in folder.iterdir() if not _ours(p.name, recorded))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(
            f"-o {folder}: folder holds files an earlier deblur did not write ({shown}); expected a new or "
            "empty folder, or add --overwrite to write the frames into it anyway"
        )


def even_size(frame: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by one pixel, repeating the edge, as yuv420p needs."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else frame


@contextlib.contextmanager
def _video_writer(path: Path, fps: float, audio: Path | None, notes: list[str]) -> Iterator[Writer]:
    """H.264 yuv420p via imageio-ffmpeg into a temporary file, ``audio``'s sound muxed in, renamed over ``path`` on success."""
    with atomic_path(path) as tmp:
        silent = tmp.with_name(f"{tmp.stem}.silent{tmp.suffix}") if audio else tmp
        writer, count = None, 0

        def write(frame: np.ndarray, duration_ms: float) -> None:
            nonlocal writer, count
            if writer is None:
                h, w = frame.shape[:2]
                writer = imageio_ffmpeg.write_frames(
                    str(silent),
                    (w, h),
                    fps=fps,
                    codec="libx264",
                    quality=QUALITY,
                    macro_block_size=1,
                    pix_fmt_out="yuv420p",
                    ffmpeg_log_level="error",
                )
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
            count += 1

        try:
            yield write
            if writer is not None:
                writer.close()
                writer = None
                if audio:
                    _add_audio(silent, audio, count / fps, tmp, notes)
        finally:
            if writer is not None:
                writer.close()
            if silent != tmp:
                silent.unlink(missing_ok=True)


def _add_audio(video: Path, source: Path, seconds: float, out: Path, notes: list[str]) -> None:
    """Write ``video`` with ``source``'s audio, cut at ``seconds`` (the video's length), as ``out``.

    The audio is copied as is, else re-encoded to AAC (for a codec the container
    refuses, e.g. PCM in MP4), else left out with a note: sound never fails the run.
    ``-t`` rather than ``-shortest``, which older ffmpeg builds apply loosely to copied audio.
    """
    for codec in ("copy", "aac"):
        result = subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-y",
                "-v",
                "error",
                "-i",
                str(video),
                "-i",
                str(source),
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-c:v",
                "copy",
                "-c:a",
                codec,
                "-t",
                f"{seconds:.6f}",
                str(out),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if result.returncode == 0:
            return
    os.replace(video, out)
    reason = (result.stderr.strip().splitlines() or [f"ffmpeg exit status {result.returncode}"])[-1]
    notes.append(f"the audio of {source} was left out: ffmpeg could not add it ({reason})")


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """One font object per size: loading it for every frame would cost more than drawing the label."""
    return ImageFont.load_default(size=size)


def labelled(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` with ``text`` in white on black at its top-left, if the label fits in the top third; else unchanged."""
    h, w = frame.shape[:2]
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = _font(max(10, h // 24))
    pad = max(2, h // 120)
    _, _, right, bottom = draw.textbbox((pad, pad), text, font=font)
    if right + pad > w or bottom + pad > h / 3:
        return frame
    draw.rectangle((0, 0, right + pad - 1, bottom + pad - 1), fill=(0, 0, 0))
    draw.text((pad, pad), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


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
    """PNG frames 000000.png, ... each written atomically; stale higher-numbered frames removed at the end.

    ``FRAMES_RECORD`` claims every frame before it is written (so a killed run's frames are still
    known as ours) and, at the end, exactly this video's; only frames it recorded are ever removed.
    """
    count = 0
    earlier = claimed = _recorded_frames(folder) if folder.is_dir() else 0

    def write(frame: np.ndarray, duration_ms: float) -> None:
        nonlocal count, claimed
        if count >= claimed:  # claimed in growing steps: one small write per 2**k frames
            claimed = max(2 * claimed, count + 1, 64)
            write_json(folder / FRAMES_RECORD, {"written_by": "bench-deblur deblur", "frames": claimed})
        with atomic_path(folder / f"{count:06d}.png") as tmp:
            iio.imwrite(tmp, frame)
        count += 1

    yield write
    write_json(folder / FRAMES_RECORD, {"written_by": "bench-deblur deblur", "frames": count})
    for index in range(count, earlier):  # frames this run claimed but did not write were never written
        (folder / f"{index:06d}.png").unlink(missing_ok=True)


def load_for_inference(model: str, dtype: str = "float32"):
    """Load a ``.keras`` file or run folder and switch it to ``dtype`` compute (weights stay float32).

    The saved model pins every layer's dtype policy to float32, so a global
    ``keras.config.set_dtype_policy`` would not reach it; each layer gets a
    mixed policy instead. One small step is run so that a backend or device that
    cannot compute in ``dtype`` fails here with a clear message, not mid-video.
    """
    import keras

    from bench_deblur.registry import load_model
    from bench_deblur.streaming import Streamer

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
        raise UserError(
            f"--dtype {dtype}: the {keras.backend.backend()} backend cannot run {model} in {dtype} here ({first_line(exc)})"
        ) from None
    return net


def deblur_video(
    input: Path,
    output: Path,
    model: str,
    side_by_side: bool = False,
    max_frames: int | None = None,
    dtype: str = "float32",
    fps: float | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Deblur ``input`` (video, GIF, image or frame folder) into ``output`` frame by frame.

    ``fps`` overrides the output frame rate (default: the input's, else 30 for
    frame folders); for GIF output it replaces the per-frame durations.
    Returns ``{"input", "output", "format", "frames", "size": [H, W], "fps", "dtype", "seconds", "notes"}``,
    ``size`` being the written frames' size, ``fps`` the output frame rate
    (None for PNG frames, the mean rate for a GIF) and ``notes`` what was changed
    on the way (odd size padded, audio left out), each also printed to stderr. ``overwrite`` lets PNG frames
    go into a folder holding other files (same-named frames are replaced; other files are left as they are).
    """
    from bench_deblur.streaming import Streamer

    input, output = Path(input), Path(output)
    if max_frames is not None and max_frames < 1:
        raise UserError(f"--max-frames {max_frames}: expected a positive integer")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UserError(f"--fps {fps}: expected a positive frame rate")
    source = open_source(input)
    fmt = _output_format(output)
    _check_output(output, fmt, input, overwrite)
    net = load_for_inference(model, dtype)
    streamer = Streamer(net)

    rate = fps or source.fps or DEFAULT_FPS
    notes: list[str] = []
    audio = source.audio if fmt == "video" else None
    if source.audio and fmt != "video":
        notes.append(
            f"the audio of {input} was left out: {'a GIF' if fmt == 'gif' else 'PNG frames'} cannot hold sound"
        )
    elif audio and fps and fps != source.fps:
        notes.append(f"the audio of {input} was left out: --fps {fps:g} changes the timing it was recorded for")
        audio = None
    if fmt == "video":
        sink = _video_writer(output, rate, audio, notes)
    elif fmt == "gif":
        sink = _gif_writer(output, source.loop)
    else:
        sink = _frames_writer(output)
    total = min(filter(None, (source.total, max_frames)), default=None)
    pending: deque = deque()  # (input frame for side-by-side, duration) of frames inside the look-ahead
    written, total_ms, size, start = 0, 0.0, None, time.perf_counter()
    try:
        with (
            warnings.catch_warnings(),
            contextlib.closing(source.read()) as frames,
            sink as write,
            progress_bar(total=total, unit="frame", desc="deblur", progress=progress) as bar,
        ):
            # JAX warns on every fork; subprocess execs ffmpeg straight from C in the child, which is safe.
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)

            def emit(out: np.ndarray) -> None:
                nonlocal written, total_ms, size
                shown, duration = pending.popleft()
                frame = to_uint8(out)
                if side_by_side:
                    frame = np.concatenate([labelled(shown, "blurry"), labelled(frame, net.name)], axis=1)
                if fmt == "video":
                    even = even_size(frame)
                    if not written and even is not frame:
                        (h, w), (eh, ew) = frame.shape[:2], even.shape[:2]
                        notes.append(
                            f"{w}x{h} frames padded to {ew}x{eh} by repeating the last row or column: "
                            "H.264 in yuv420p, the format browsers play, needs an even width and height"
                        )
                    frame = even
                write(frame, duration)
                written, total_ms, size = written + 1, total_ms + duration, frame.shape[:2]
                bar.update()

            for frame, duration in islice(frames, max_frames):
                pending.append(
                    (to_uint8(frame) if side_by_side else None, 1000.0 / rate if fps or duration is None else duration)
                )
                for out in streamer.push(frame):
                    emit(out)
            for out in streamer.flush():
                emit(out)
            if not written:
                raise UserError(f"{input}: no frames could be read; expected a video with at least one frame")
    except OSError as exc:
        raise UserError(f"{output}: could not write ({first_line(exc)})") from None
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return {
        "input": str(input),
        "output": str(output),
        "format": fmt,
        "frames": written,
        "size": list(size),
        "fps": None if fmt == "frames" else (1000.0 * written / total_ms if fmt == "gif" and total_ms else rate),
        "dtype": dtype,
        "seconds": round(time.perf_counter() - start, 3),
        "notes": notes,
    }
