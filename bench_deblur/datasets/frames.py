"""Frames of one split folder: listing paired blurry/sharp sequences and reading their frames.

A *split folder* holds one folder per sequence; each sequence has a blurry and a sharp frame
folder whose names depend on the layout (``Layout.blur`` and ``Layout.sharp`` in ``table.LAYOUTS``,
e.g. GoPro's <seq>/blur (or blur_gamma) and <seq>/sharp).

Every problem with the data is reported as a one-line ``UserError`` naming the file or folder,
because a benchmark that silently skips or misreads frames produces wrong numbers.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench_deblur.datasets.table import LAYOUTS, SHAPES, listing
from bench_deblur.errors import UserError, first_line

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
FLOAT_SLACK = 0.5 / 255
"""Float frames may stray this far outside [0, 1] (rounding) and are clipped; further out they are refused."""


@dataclass
class Sequence:
    """One video: frame paths in temporal order; ``blur[i]`` pairs with ``sharp[i]``."""

    name: str
    blur: list[Path]
    sharp: list[Path]


def find_sequences(root: Path, layout: str = "auto", blur_dir: str | None = None) -> list[Sequence]:
    """List the sequences of a split folder, checking that every sequence has matching frames.

    ``layout="auto"`` picks the layout whose folders the sequences contain (``SHAPES``: native and
    gopro are the same here). ``blur_dir`` chooses the blurry folder of a layout with several
    candidates (GoPro ships both ``blur`` and ``blur_gamma``); by default the first one present.
    Sub-folders that contain none of the layout's folders are ignored.
    """
    root = Path(root)
    if layout != "auto" and layout not in LAYOUTS:
        raise UserError(f"layout={layout!r}: expected one of auto, {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: natural_key(p.name))
    if layout == "auto":
        layout = _detect(root, folders)
    blur_names, sharp_name = LAYOUTS[layout].blur, LAYOUTS[layout].sharp
    if blur_dir is not None:
        if len(blur_names) < 2:
            choosers = [name for name, other in LAYOUTS.items() if len(other.blur) > 1]
            raise UserError(f"blur_dir={blur_dir!r}: only the {listing(choosers, 'and')} layouts have a choice of "
                            "blurry folder")
        blur_names = (blur_dir,)
    sequences = []
    for folder in folders:
        blur_folder = next((folder / b for b in blur_names if (folder / b).is_dir()), None)
        sharp_folder = folder / sharp_name
        if blur_folder is None and not sharp_folder.is_dir():
            continue
        if blur_folder is None:
            raise UserError(f"{folder}: has {sharp_name}/ but no {' or '.join(b + '/' for b in blur_names)} folder")
        if not sharp_folder.is_dir():
            raise UserError(f"{folder}: has {blur_folder.relative_to(folder)}/ but no {sharp_name}/ folder")
        blur, sharp = list_frames(blur_folder), list_frames(sharp_folder)
        if not blur:
            raise UserError(f"{blur_folder}: no frames (expected {'/'.join(FRAME_SUFFIXES)} files)")
        if len(blur) != len(sharp):
            raise UserError(f"{folder}: {len(blur)} blurry frames in {blur_folder.name}/ "
                            f"but {len(sharp)} sharp frames in {sharp_name}/")
        sequences.append(Sequence(folder.name, blur, sharp))
    if not sequences:
        raise UserError(f"{root}: no sequences found (expected <sequence>/{blur_names[0]} and "
                        f"<sequence>/{sharp_name} folders){_split_hint(folders)}")
    return sequences


def list_frames(folder: Path) -> list[Path]:
    """Image files of a folder in natural order (frame2 before frame10)."""
    return sorted((p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES
                   and not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value, as frame numbering intends."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def read_frame(path: Path) -> np.ndarray:
    """Read one frame as float32 RGB (H, W, 3) in [0, 1].

    Grey frames are replicated to RGB and an alpha channel is dropped (datasets store opaque
    video frames, so alpha carries nothing); CMYK frames are converted to RGB by Pillow. Integer
    images are scaled by their type's maximum; float images must already lie in [0, 1] (up to
    ``FLOAT_SLACK``), else they are refused with the range found. Note that Pillow decodes 16-bit
    *colour* PNGs at 8-bit precision (16-bit grey PNGs and 16-bit TIFFs keep full precision).
    """
    import imageio.v3 as iio  # here, not at the top: the CLI imports this package for its layout names

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: frame not found")
    try:
        with warnings.catch_warnings():  # on a broken file imageio tries legacy plugins that warn
            warnings.simplefilter("ignore", DeprecationWarning)
            image = iio.imread(path)
    except Exception as exc:  # decoders raise many types; all mean "not a readable image"
        raise unreadable_image(path, exc) from None
    if image.ndim == 3 and image.shape[-1] not in (1, 2, 3, 4):
        raise UserError(f"{path}: expected a single image, got an array of shape {image.shape}")
    if image.ndim not in (2, 3):
        raise UserError(f"{path}: expected a single image, got an array of shape {image.shape}")
    if image.ndim == 3 and image.shape[-1] == 4:  # RGBA, or CMYK, whose K is no alpha
        image = _cmyk_as_rgb(path, image)
    is_float = not np.issubdtype(image.dtype, np.integer)
    if np.issubdtype(image.dtype, np.integer):
        image = image.astype(np.float32) / np.iinfo(image.dtype).max
    else:
        image = image.astype(np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] in (2, 4):  # grey+alpha or RGBA
        image = image[..., :-1]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if is_float:
        _check_float_range(path, image)
    return np.clip(image, 0, 1)


def unreadable_image(path: Path, exc: Exception) -> UserError:
    """The one-line error for an image file a decoder refused: empty, text, or the decoder's first line.

    Why: imageio answers an empty or text file with the plugins it lacks (video codecs to pip install).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        head = None
    if head == b"":
        reason = "empty file, 0 bytes"
    elif head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        reason = "not an image: the file holds text"
    else:
        reason = first_line(exc)
    return UserError(f"{path}: cannot read image ({reason}); expected an image file")


def _cmyk_as_rgb(path: Path, image: np.ndarray) -> np.ndarray:
    """A 4-channel image as decoded, or, when the file stores CMYK, its 8-bit RGB conversion by Pillow."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")) if im.mode == "CMYK" else image
    except (OSError, ValueError, SyntaxError):  # Pillow cannot read it (e.g. a float TIFF): ask tifffile
        separated = False
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                separated = tif.pages[0].photometric == tifffile.PHOTOMETRIC.SEPARATED
        except (ImportError, OSError, ValueError, IndexError):  # not readable as a TIFF page: not known to be CMYK
            separated = False
    if separated:
        raise UserError(f"{path}: CMYK ({image.dtype}) TIFF that Pillow cannot convert to RGB; "
                        "save the frames as 8- or 16-bit RGB")
    return image


def _check_float_range(path: Path, image: np.ndarray) -> None:
    """Refuse float pixels outside [0, 1] (beyond ``FLOAT_SLACK``): clipping them would score other pixels."""
    if not np.isfinite(image).all():
        raise UserError(f"{path}: float image holds NaN or infinite values; expected values in [0, 1]")
    low, high = float(image.min()), float(image.max())
    if low < -FLOAT_SLACK or high > 1 + FLOAT_SLACK:
        raise UserError(f"{path}: float image with values from {low:g} to {high:g}; expected values in [0, 1] "
                        "(scale float frames to [0, 1], or save them as 8- or 16-bit integers)")


def load_sequence(seq: Sequence, max_frames: int | None = None,
                  dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Load ``(blur, sharp)`` as (N, H, W, 3) arrays, checking that every frame has one size.

    ``dtype="uint8"`` stores rounded 8-bit values (4x less memory, for training caches); frames
    are read one at a time into preallocated arrays so peak memory stays at the result's size.
    """
    if dtype not in ("float32", "uint8"):
        raise UserError(f"dtype={dtype!r}: expected float32 or uint8")
    count = len(seq.blur) if max_frames is None else min(max_frames, len(seq.blur))
    if count < 1:
        raise UserError(f"max_frames={max_frames}: expected at least 1 frame for sequence {seq.name}")
    first = read_frame(seq.blur[0])
    out = {key: np.empty((count, *first.shape), dtype=dtype) for key in ("blur", "sharp")}
    for i in range(count):
        for key in ("blur", "sharp"):
            path = getattr(seq, key)[i]
            frame = first if (key, i) == ("blur", 0) else read_frame(path)
            if frame.shape != first.shape:
                raise UserError(f"{path}: frame is {_size(frame)} but {seq.blur[0]} is {_size(first)}")
            out[key][i] = frame if dtype == "float32" else np.round(frame * 255)
    return out["blur"], out["sharp"]


def _size(frame: np.ndarray) -> str:
    return f"{frame.shape[1]}x{frame.shape[0]}"


def _detect(root: Path, folders: list[Path]) -> str:
    """The one layout the sequence folders use; mixed or unknown layouts are errors."""
    found = {shape.name for folder in folders for shape in SHAPES if has_layout(folder, shape.name)}
    if len(found) > 1:
        raise UserError(f"{root}: sequences mix the {' and '.join(sorted(found))} layouts; pass layout= explicitly")
    if not found:
        expected = listing([f"<sequence>/{shape.blur[0]}+{shape.sharp}" for shape in SHAPES])
        raise UserError(f"{root}: no sequences found (expected {expected} folders){_split_hint(folders)}")
    return found.pop()


def has_layout(folder: Path, layout: str) -> bool:
    """Whether ``folder`` holds the blurry or the sharp frame folder of ``layout``."""
    return (folder / LAYOUTS[layout].sharp).is_dir() or any((folder / b).is_dir() for b in LAYOUTS[layout].blur)


def _split_hint(folders: list[Path]) -> str:
    """Point at a split folder when the user passed a dataset root (folder of splits) instead."""
    for folder in folders:
        if any(q.is_dir() and any(has_layout(q, shape.name) for shape in SHAPES) for q in folder.iterdir()):
            return f"; {folder.parent} looks like a dataset root: pass a split folder such as {folder}"
    return ""
