"""The frame cache: what it reads equals the files, it is built once, and it follows changes to the files."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest

from bench_deblur import framecache
from bench_deblur.datasets import find_sequences, load_sequence, read_frame
from bench_deblur.errors import UserError
from bench_deblur.framecache import BLUR, SHARP, cached_sequence


def _write(root, name: str, frames: list[np.ndarray]) -> None:
    for sub, offset in (("blur", 0), ("sharp", 1)):
        (root / name / sub).mkdir(parents=True, exist_ok=True)
        for k, frame in enumerate(frames):
            iio.imwrite(root / name / sub / f"{k:03d}.png", frame + offset)


@pytest.fixture
def sequences(tmp_path):
    """An 8-bit RGB sequence and a 16-bit grey one (finer than 8 bits), 4 frames of 9x7."""
    rng = np.random.default_rng(0)
    _write(tmp_path, "rgb8", [rng.integers(0, 250, (9, 7, 3), dtype=np.uint8) for _ in range(4)])
    _write(tmp_path, "grey16", [rng.integers(0, 65000, (9, 7), dtype=np.uint16) for _ in range(4)])
    return {seq.name: seq for seq in find_sequences(tmp_path)}


def test_reads_equal_the_files(sequences):
    for name, dtype in (("rgb8", "uint8"), ("grey16", "float32")):
        seq = sequences[name]
        cached = cached_sequence(seq)
        assert cached.dtype == dtype and cached.shape == (4, 9, 7, 3) and len(cached) == 4
        for kind, files in ((BLUR, seq.blur), (SHARP, seq.sharp)):
            np.testing.assert_array_equal(cached.frames(kind, 0, 4), np.stack([read_frame(f) for f in files]))
        blur8, sharp8 = load_sequence(seq, dtype="uint8")
        np.testing.assert_array_equal(cached.uint8(SHARP, 0, 4), sharp8)
        np.testing.assert_array_equal(cached.uint8(BLUR, 1, 3, slice(2, 6)), blur8[1:3, 2:6])  # rows only


def test_built_once_and_rebuilt_when_a_file_or_the_cache_changes(sequences, monkeypatch):
    seq = sequences["rgb8"]
    first = cached_sequence(seq)
    assert cached_sequence(seq, max_frames=2).path != first.path  # another frame list, another entry
    real = framecache.read_frame
    monkeypatch.setattr(framecache, "read_frame", lambda path: pytest.fail(f"decoded {path} again"))
    assert cached_sequence(seq) == first  # reused: nothing decoded
    monkeypatch.setattr(framecache, "read_frame", real)
    size = first.path.stat().st_size
    with open(first.path, "r+b") as f:  # a cut-short entry (a full disk, say) is rebuilt
        f.truncate(size - 1)
    assert cached_sequence(seq) == first and first.path.stat().st_size == size
    stat = seq.sharp[2].stat()
    os.utime(seq.sharp[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cached_sequence(seq).path != first.path  # a changed file makes a new entry


def test_bad_frames_and_an_unwritable_cache_are_one_line(sequences, tmp_path, monkeypatch):
    seq = sequences["rgb8"]
    iio.imwrite(seq.sharp[3], np.zeros((5, 7, 3), np.uint8))
    with pytest.raises(UserError, match=f"^{seq.sharp[3]}: frame is 7x5 but {seq.blur[0]} is 7x9$"):
        cached_sequence(seq)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(framecache.CACHE_ENV, str(tmp_path / "file" / "cache"))
    with pytest.raises(UserError, match="cannot write the frame cache .*BENCH_DEBLUR_CACHE"):
        cached_sequence(sequences["grey16"])
