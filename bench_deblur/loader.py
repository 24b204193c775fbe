"""Training clips as a ``keras.utils.PyDataset``: backend-agnostic (no tf.data), read from disk, resumable.

Every batch is a pure function of ``(seed, epoch, index)``, so a run resumed at epoch ``e``
sees bit-identical batches whatever the number of workers or the order they finish in.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np

from bench_deblur.datasets import Sequence, read_frame
from bench_deblur.errors import UserError
from bench_deblur.framecache import BLUR, SHARP, CachedSequence, cached_sequence
from bench_deblur.progress import progress_bar


class ClipDataset(keras.utils.PyDataset):
    """Random clips of ``clip_len`` consecutive frames, one ``crop`` x ``crop`` window per clip.

    The crop is at the same place in every frame and the flips/90-degree rotations (``augment``)
    apply to the whole clip, so the motion between frames stays physically consistent. Frames
    are decoded once into the frame cache (``bench_deblur.framecache``, shared by every run and
    process) and each clip reads only its own rows from it, so memory does not grow with the
    dataset (a GoPro-sized set would need 11.6 GB in RAM) and no step waits on PNG decoding.
    Sequences shorter than ``clip_len`` are skipped with a warning (listed in ``skipped``).
    Clip start positions are uniform over all valid positions of all sequences.

    Resuming: Keras' ``fit()`` calls ``on_epoch_end()`` once before its first epoch (after the
    build step), so in a fresh run training epoch ``k`` draws dataset epoch ``k + 1``. Setting
    ``dataset.epoch = k`` before ``fit(initial_epoch=k)`` therefore reproduces the batches of
    the uninterrupted run exactly (checked with threaded and multiprocessing workers).
    """

    def __init__(self, sequences: list[Sequence], clip_len: int = 13, crop: int = 128, batch_size: int = 8,
                 steps_per_epoch: int = 100, seed: int = 0, augment: bool = True, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 8, progress: bool = False):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        for name, value in (("clip_len", clip_len), ("crop", crop), ("batch_size", batch_size),
                            ("steps_per_epoch", steps_per_epoch)):
            _check_positive(name, value)
        if not isinstance(seed, int) or seed < 0:
            raise UserError(f"seed={seed!r}: expected an integer >= 0")
        usable = [s for s in sequences if len(s.blur) >= clip_len]
        self.skipped = [s.name for s in sequences if len(s.blur) < clip_len]
        if not usable:
            longest = max((len(s.blur) for s in sequences), default=0)
            raise UserError(f"clip_len={clip_len}: no sequence has that many frames (longest has {longest})")
        if self.skipped:
            warnings.warn(f"clip_len={clip_len}: skipping sequences shorter than that: {', '.join(self.skipped)}",
                          stacklevel=2)
        self.sequences: list[CachedSequence] = []
        for seq in progress_bar(usable, desc="cache", unit="seq", progress=progress):
            cached = cached_sequence(seq)
            _check_crop(crop, seq, cached.shape[1:3])
            self.sequences.append(cached)
        self.clip_len, self.crop, self.batch_size = clip_len, crop, batch_size
        self.steps_per_epoch, self.seed, self.augment = steps_per_epoch, seed, augment
        self.epoch = 0
        starts = np.array([len(cached) - clip_len + 1 for cached in self.sequences])
        self._probs = starts / starts.sum()

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of the current epoch: float32 (B, clip_len, crop, crop, 3) blurry, sharp."""
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch {index} out of range for {self.steps_per_epoch} steps")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        clips = [self._clip(rng) for _ in range(self.batch_size)]
        x = np.stack([c[0] for c in clips]).astype(np.float32) / 255
        y = np.stack([c[1] for c in clips]).astype(np.float32) / 255
        return x, y

    def on_epoch_end(self) -> None:
        """Move on to the next epoch's batches (Keras calls this; see the class docstring)."""
        self.epoch += 1

    def _clip(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cached = self.sequences[rng.choice(len(self.sequences), p=self._probs)]
        n, h, w = cached.shape[:3]
        t = rng.integers(0, n - self.clip_len + 1)
        y, x = rng.integers(0, h - self.crop + 1), rng.integers(0, w - self.crop + 1)
        pair = [cached.uint8(kind, t, t + self.clip_len, slice(y, y + self.crop))[:, :, x : x + self.crop]
                for kind in (BLUR, SHARP)]
        if self.augment:
            flip_v, flip_h, turns = rng.random() < 0.5, rng.random() < 0.5, int(rng.integers(0, 4))
            for i, clip in enumerate(pair):
                if flip_v:
                    clip = clip[:, ::-1]
                if flip_h:
                    clip = clip[:, :, ::-1]
                pair[i] = np.rot90(clip, turns, axes=(1, 2))
        return pair[0], pair[1]


def validation_clips(sequences: list[Sequence], clip_len: int, crop: int, count: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` fixed clips as float32 (count, clip_len, crop, crop, 3) blurry and sharp arrays.

    Centre crops, no augmentation, so the validation score changes only when the model does.
    Clip positions are drawn without replacement from all valid (sequence, start) pairs (and
    repeat only when ``count`` exceeds them); only the frames needed are read from disk.
    """
    for name, value in (("clip_len", clip_len), ("crop", crop), ("count", count)):
        _check_positive(name, value)
    pairs = [(s, t) for s in sequences for t in range(len(s.blur) - clip_len + 1)]
    if not pairs:
        raise UserError(f"clip_len={clip_len}: no validation sequence has that many frames")
    order = np.random.default_rng(seed).permutation(len(pairs))
    x = np.empty((count, clip_len, crop, crop, 3), np.float32)
    y = np.empty_like(x)
    cache: dict = {}
    for i in range(count):
        seq, start = pairs[order[i % len(pairs)]]
        for k in range(start, start + clip_len):
            if seq.blur[k] not in cache:
                cache[seq.blur[k]] = _centre_crops(seq, k, crop)
            x[i, k - start], y[i, k - start] = cache[seq.blur[k]]
    return x, y


def _centre_crops(seq: Sequence, index: int, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre crops of one blurry/sharp pair, which must have the same size."""
    blur, sharp = read_frame(seq.blur[index]), read_frame(seq.sharp[index])
    if blur.shape != sharp.shape:
        raise UserError(f"{seq.sharp[index]}: frame is {sharp.shape[1]}x{sharp.shape[0]} "
                        f"but {seq.blur[index]} is {blur.shape[1]}x{blur.shape[0]}")
    _check_crop(crop, seq, blur.shape[:2])
    top, left = (blur.shape[0] - crop) // 2, (blur.shape[1] - crop) // 2
    window = (slice(top, top + crop), slice(left, left + crop))
    return blur[window], sharp[window]


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise UserError(f"{name}={value!r}: expected a positive integer")


def _check_crop(crop: int, seq: Sequence, size: tuple[int, int]) -> None:
    if crop > min(size):
        raise UserError(f"crop={crop}: larger than the {size[1]}x{size[0]} frames of sequence {seq.name} "
                        f"({seq.blur[0].parent})")
