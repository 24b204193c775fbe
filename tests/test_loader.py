"""ClipDataset and validation clips: shapes, resumable determinism, clip-consistent crops and augmentation."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from bench_deblur.datasets import find_sequences
from bench_deblur.errors import UserError
from bench_deblur.loader import ClipDataset, validation_clips

H, W = 20, 24


def _base(name: str) -> np.ndarray:
    return np.random.default_rng(list(name.encode())).integers(0, 200, (H, W, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    """Blurry frame k = base + 2k and sharp = 255 - blurry: offsets reveal frame order, pairing and crop."""
    root = tmp_path_factory.mktemp("clips")
    for s, count in (("a", 12), ("b", 9), ("short", 3)):
        for k in range(count):
            blur = _base(s) + 2 * k
            for sub, image in (("blur", blur), ("sharp", 255 - blur)):
                (root / s / sub).mkdir(parents=True, exist_ok=True)
                iio.imwrite(root / s / sub / f"{k:03d}.png", image)
    return find_sequences(root)


def _dataset(sequences, **kw) -> ClipDataset:
    args = dict(clip_len=5, crop=8, batch_size=6, steps_per_epoch=4, seed=1)
    with pytest.warns(UserWarning, match="clip_len=5: skipping sequences shorter than that: short"):
        return ClipDataset(sequences, **{**args, **kw})


def test_shapes_types_and_pyddataset_options(sequences):
    ds = _dataset(sequences, workers=2, use_multiprocessing=True, max_queue_size=3)
    x, y = ds[0]
    assert x.shape == y.shape == (6, 5, 8, 8, 3) and x.dtype == y.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1 and len(ds) == 4 and ds.skipped == ["short"]
    assert (ds.workers, ds.use_multiprocessing, ds.max_queue_size) == (2, True, 3)
    assert all(cached.dtype == "uint8" and cached.path.is_file() for cached in ds.sequences)  # on disk, not in RAM


def test_batches_are_a_pure_function_of_seed_epoch_index(sequences):
    ds, other = _dataset(sequences), _dataset(sequences)
    first = ds[2]
    np.testing.assert_array_equal(ds[2][0], first[0])
    np.testing.assert_array_equal(other[2][0], first[0])  # a fresh dataset (a resumed run) agrees
    assert not np.array_equal(ds[1][0], first[0])
    ds.on_epoch_end()
    ds.on_epoch_end()
    assert ds.epoch == 2 and not np.array_equal(ds[2][0], first[0])
    other.epoch = 2  # resuming at epoch 2 reproduces it exactly
    np.testing.assert_array_equal(other[2][0], ds[2][0])
    assert not np.array_equal(_dataset(sequences, seed=2)[2][0], first[0])
    with pytest.raises(IndexError):
        ds[4]


@pytest.mark.parametrize("augment", [False, True])
def test_one_crop_and_one_transform_per_clip(sequences, augment):
    """Within a clip, frame k - frame 0 == 2k/255 everywhere and sharp == 1 - blurry: same window and
    same flips/rotation for every frame; without augmentation every clip is a plain crop of a base."""
    ds = _dataset(sequences, augment=augment, batch_size=16)
    x, y = ds[0]
    np.testing.assert_allclose(y, 1 - x, atol=1e-6)
    steps = 2 * np.arange(5)[None, :, None, None, None] / 255
    np.testing.assert_allclose(x - x[:, :1], np.broadcast_to(steps, x.shape), atol=1e-6)
    plain = [_source(np.round(clip[0] * 255).astype(np.uint8)) is not None for clip in x]
    assert all(plain) if not augment else not all(plain)


def _source(frame: np.ndarray) -> str | None:
    """The sequence of which ``frame`` is an un-flipped, un-rotated crop (of a shifted frame), if any."""
    for s in ("a", "b"):
        base = _base(s).astype(int)
        for top in range(H - 8 + 1):
            for left in range(W - 8 + 1):
                diff = frame.astype(int) - base[top:top + 8, left:left + 8]
                if np.all(diff == diff.flat[0]):
                    return s
    return None


def test_crop_larger_than_frames(sequences):
    with pytest.raises(UserError, match=f"^crop=21: larger than the 24x20 frames of sequence a \\({sequences[0].blur[0].parent}\\)"):
        _dataset(sequences, crop=21)
    with pytest.raises(UserError, match="crop=21: larger than the 24x20 frames"):
        validation_clips(sequences, clip_len=3, crop=21, count=2)


def test_no_sequence_long_enough(sequences):
    with pytest.raises(UserError, match=r"^clip_len=13: no sequence has that many frames \(longest has 12\)$"):
        ClipDataset(sequences, clip_len=13, crop=8)
    with pytest.raises(UserError, match="^batch_size=0: expected a positive integer$"):
        ClipDataset(sequences, clip_len=3, crop=8, batch_size=0)


def test_validation_clips_are_fixed_centre_crops(sequences):
    x, y = validation_clips(sequences, clip_len=4, crop=8, count=5, seed=3)
    assert x.shape == y.shape == (5, 4, 8, 8, 3) and x.dtype == np.float32
    np.testing.assert_allclose(y, 1 - x, atol=1e-6)
    steps = 2 * np.arange(4)[None, :, None, None, None] / 255
    np.testing.assert_allclose(x - x[:, :1], np.broadcast_to(steps, x.shape), atol=1e-6)
    bases = {s: _base(s)[6:14, 8:16].astype(np.float32) / 255 for s in ("a", "b", "short")}
    for clip in x:
        assert any(np.allclose(clip[0] - base, (clip[0] - base).flat[0], atol=1e-6) for base in bases.values())
    again, _ = validation_clips(sequences, clip_len=4, crop=8, count=5, seed=3)
    np.testing.assert_array_equal(again, x)
    assert not np.array_equal(validation_clips(sequences, clip_len=4, crop=8, count=5, seed=4)[0], x)
    many, _ = validation_clips(sequences, clip_len=4, crop=8, count=40, seed=3)  # more than exist: repeats
    assert many.shape[0] == 40


def test_starts_are_uniform_over_valid_positions(sequences):
    """Sequences are drawn in proportion to their clip positions: a has 8 of the 13 (0.62), b has 5."""
    ds = _dataset(sequences, augment=False, batch_size=64)
    sources = [_source(np.round(clip[0] * 255).astype(np.uint8)) for i in range(4) for clip in ds[i][0]]
    assert None not in sources
    assert 0.52 < sources.count("a") / len(sources) < 0.71


def test_crop_may_equal_the_frame_size(sequences):
    ds = ClipDataset(sequences[:1], clip_len=12, crop=20, batch_size=1, steps_per_epoch=1)
    assert ds[0][0].shape == (1, 12, 20, 20, 3)
