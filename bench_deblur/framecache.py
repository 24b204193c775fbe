"""Decoded frames on disk: each sequence's blurry and sharp frames as one array file, read a few at a time.

Decoding is the slow part of reading a dataset (about 20 ms per 1280x720 PNG), and keeping decoded
frames in RAM does not scale (GoPro's training set is 11.6 GB as uint8). So a sequence is decoded
once into a ``.npy`` file (shape (2, N, H, W, 3): blurry, sharp) in a cache folder, named by a hash
of its frame files' paths, sizes, modification times and contents (a changed file makes a new entry,
even one replaced with its size and modification time kept, as ``cp -p``, ``rsync -t`` and ``tar``
do), written atomically and shared by every run and every process. A CRC-32 of the decoded array
follows it in the file and is checked each time the entry is opened: a corrupted entry is decoded
again, never served. Reads copy only the frames, or the rows of
frames, asked for with plain file reads, not a memory map: a process's resident memory stays at
what it holds, not at what it has read.

Frames whose values are exact 8-bit levels (PNG, JPEG) are stored as uint8; finer ones (16-bit or
float images) as float32, so ``frames()`` returns exactly what ``datasets.read_frame`` returns.

The folder is ``$BENCH_DEBLUR_CACHE``, else ``$XDG_CACHE_HOME/bench-deblur/frames``, else
``~/.cache/bench-deblur/frames``; it may be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench_deblur import fileio
from bench_deblur.datasets import Sequence, read_frame
from bench_deblur.errors import UserError

CACHE_ENV = "BENCH_DEBLUR_CACHE"
FORMAT = 2  # bump when the file layout changes: old entries are then ignored
BLUR, SHARP = 0, 1
CHECKSUM = b"BDFC-CRC"  # after the array: this tag, then the array's CRC-32 as 8 little-endian bytes
TRAILER = len(CHECKSUM) + 8
CHUNK = 16 * 2**20  # bytes hashed per read


def cache_dir() -> Path:
    """Where cached sequences live (see the module docstring)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bench-deblur" / "frames"


@dataclass(frozen=True)
class CachedSequence:
    """One sequence in the cache: ``shape`` is (N, H, W, 3) per kind (``BLUR``, ``SHARP``). Picklable."""

    name: str
    path: Path
    shape: tuple[int, int, int, int]
    dtype: str
    offset: int

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, kind: int, start: int, stop: int, rows: slice = slice(None)) -> np.ndarray:
        """Frames ``start:stop`` of ``kind`` (rows ``rows`` only), as stored: (k, rows, W, 3)."""
        n, h, w, c = self.shape
        top, bottom, _ = rows.indices(h)
        out = np.empty((stop - start, bottom - top, w, c), self.dtype)
        row = w * c * out.itemsize
        with open(self.path, "rb") as f:
            if (top, bottom) == (0, h):  # whole frames lie end to end: one read
                chunks = [(out, (kind * n + start) * h)]
            else:
                chunks = [(out[i], ((kind * n + start + i) * h + top)) for i in range(stop - start)]
            for buffer, first_row in chunks:
                f.seek(self.offset + first_row * row)
                if f.readinto(buffer) != buffer.nbytes:
                    raise UserError(f"{self.path}: frame cache is truncated; delete it and run again")
        return out

    def frames(self, kind: int, start: int, stop: int) -> np.ndarray:
        """float32 frames in [0, 1], equal to ``read_frame`` of the files."""
        raw = self.read(kind, start, stop)
        return raw.astype(np.float32) / 255 if raw.dtype == np.uint8 else raw

    def uint8(self, kind: int, start: int, stop: int, rows: slice = slice(None)) -> np.ndarray:
        """Frames rounded to 8 bits, as ``load_sequence(dtype="uint8")`` gives them (training clips)."""
        raw = self.read(kind, start, stop, rows)
        return raw if raw.dtype == np.uint8 else np.round(raw * 255).astype(np.uint8)


def cached_sequence(seq: Sequence, max_frames: int | None = None) -> CachedSequence:
    """The first ``max_frames`` (default all) frame pairs of ``seq`` in the cache, decoding them on first use."""
    count = len(seq.blur) if max_frames is None else min(max_frames, len(seq.blur))
    if count < 1:
        raise UserError(f"max_frames={max_frames}: expected at least 1 frame for sequence {seq.name}")
    files = [*seq.blur[:count], *seq.sharp[:count]]
    listing = []
    for file in files:
        try:
            st = file.stat()
        except OSError:
            raise UserError(f"{file}: frame not found") from None
        listing.append((str(file.absolute()), st.st_size, st.st_mtime_ns, _file_crc(file)))
    key = hashlib.sha256(json.dumps([FORMAT, listing]).encode()).hexdigest()[:32]
    path = cache_dir() / f"{key}.npy"
    found = _open(seq.name, path)
    if found is None:
        _build(seq, count, path)
        found = _open(seq.name, path)
        if found is None:
            raise UserError(f"{path}: the frame cache entry just written does not read back intact; "
                            f"check the disk, or set {CACHE_ENV} to another folder")
    return found


def _file_crc(file: Path) -> int:
    """CRC-32 of a frame file's bytes (part of the cache key: the content, not just the size and date)."""
    try:
        with open(file, "rb") as f:
            return _crc(f, None)
    except OSError as exc:
        raise UserError(f"{file}: cannot read frame ({exc.strerror or exc})") from None


def _crc(f, size: int | None, crc: int = 0) -> int:
    """CRC-32 of the next ``size`` bytes of ``f`` (None: to the end), read in chunks."""
    while size is None or size > 0:
        chunk = f.read(CHUNK if size is None else min(CHUNK, size))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        if size is not None:
            size -= len(chunk)
    return crc


def _open(name: str, path: Path) -> CachedSequence | None:
    """The cached sequence at ``path``; None when it is missing, incomplete or fails its checksum."""
    try:
        with open(path, "rb") as f:
            np.lib.format.read_magic(f)
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            offset = f.tell()
            body = int(np.prod(shape)) * dtype.itemsize
            if len(shape) != 5 or os.fstat(f.fileno()).st_size != offset + body + TRAILER:
                return None
            crc = _crc(f, body)
            if f.read(TRAILER) != CHECKSUM + crc.to_bytes(8, "little"):
                return None
    except (OSError, ValueError):
        return None
    return CachedSequence(name, path, tuple(shape[1:]), dtype.name, offset)


class _Finer(Exception):
    """A frame holds values between 8-bit levels: the sequence is stored as float32."""


def _build(seq: Sequence, count: int, path: Path) -> None:
    """Decode the frames one at a time into ``path`` (atomically); memory stays at one frame."""
    first = read_frame(seq.blur[0])
    for dtype in ("uint8", "float32"):
        try:
            with fileio.atomic_path(path) as tmp, open(tmp, "wb") as f:
                header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": (2, count, *first.shape)}
                np.lib.format.write_array_header_1_0(f, header)
                crc = 0
                for files in (seq.blur, seq.sharp):
                    for file in files[:count]:
                        frame = first if file == seq.blur[0] else read_frame(file)
                        if frame.shape != first.shape:
                            raise UserError(f"{file}: frame is {frame.shape[1]}x{frame.shape[0]} but {seq.blur[0]} "
                                            f"is {first.shape[1]}x{first.shape[0]}")
                        data = _encode(frame, dtype).tobytes()
                        crc = zlib.crc32(data, crc)
                        f.write(data)
                f.write(CHECKSUM + crc.to_bytes(8, "little"))
            return
        except _Finer:
            continue
        except OSError as exc:
            raise UserError(f"{path}: cannot write the frame cache ({exc.strerror or exc}); "
                            f"set {CACHE_ENV} to a writable folder with space") from None


def _encode(frame: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "float32":
        return frame
    levels = np.round(frame * 255).astype(np.uint8)
    if not np.array_equal(levels.astype(np.float32) / 255, frame):
        raise _Finer
    return levels
