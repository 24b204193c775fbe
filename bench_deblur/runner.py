"""One run: check it, train (or resume) it, evaluate it and record where its numbers came from.

``bench-deblur train`` runs one run and ``bench-deblur run`` runs many (``sweep.execute``); both come
here, so a run means the same thing either way. A run lives in ``<results>/<run_id>/`` and is
complete only when its ``metrics.json`` exists; every file is written atomically and
``metrics.json`` last, so a kill at any moment leaves either a complete run or one that a rerun
resumes from its last checkpoint. A lock file per run (``flock``, released by the kernel even on
SIGKILL) keeps two processes off the same run.
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager
from pathlib import Path

from bench_deblur import fileio
from bench_deblur.config import RunConfig, TrainConfig, to_dict
from bench_deblur.datasets import RunData
from bench_deblur.errors import UserError
from bench_deblur.provenance import run_provenance
from bench_deblur.registry import model_description

# Settings that do not change what a run computes; a rerun may change them.
_FREE_TRAIN_FIELDS = ("workers", "tensorboard")


def is_complete(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").exists()


def run_lock(run_dir: Path) -> AbstractContextManager[bool]:
    """Yields True if this process holds the run's lock, False if another process does."""
    return fileio.flocked(run_dir / ".lock", wait=False)


def run_one(run: RunConfig, results: Path, data: RunData, progress: bool = True, deadline: float | None = None,
            runtime: bool = True) -> str:
    """Train (or resume) and evaluate one run; returns 'complete', 'done', 'locked' or 'partial'.

    The model, recipe and data are checked before anything is written, so a bad
    config leaves no trace in the results folder. ``runtime=False`` leaves the speed
    measurement to ``measure_runtime``, for processes that share the machine.
    """
    from bench_deblur.evaluate import evaluate_splits, model_cost, save_samples
    from bench_deblur.train import CHECKPOINT, TrainingDiverged, initial_model, train

    run_dir = results / run.run_id
    run.data = run.data or data.describe()
    check_run(run, results)
    if is_complete(run_dir):
        return "complete"
    model = initial_model(run)  # the one model of this run: trained (or replaced by its checkpoint), then evaluated
    if model.trainable_weights:
        check_data(run, data)
    with run_lock(run_dir) as mine:
        if not mine:
            return "locked"
        check_run(run, results)  # another process may have started this folder meanwhile
        if is_complete(run_dir):
            return "complete"
        for stale in run_dir.glob(".*.tmp*"):  # left by a writer that was killed mid-write
            stale.unlink()
        start = time.time()
        config = to_dict(run) | {"label": run.label}
        config["model"]["description"] = model_description(run.model.name)
        fileio.write_json(run_dir / "config.json", config)
        try:
            model, finished = train(run, run_dir, data.train, model, progress=progress, deadline=deadline)
        except TrainingDiverged as exc:
            if (run_dir / CHECKPOINT).exists():
                raise
            raise TrainingDiverged(f"{str(exc).split(';')[0]}; no checkpoint was saved yet (it diverged in the first "
                                   "epoch); try a lower --lr") from None
        if not finished:
            return "partial"
        with fileio.atomic_path(run_dir / "model.keras") as tmp:
            model.save(tmp)
        splits = data.test.test_splits()
        metrics = evaluate_splits(model, splits, max_frames=run.eval_max_frames, progress=progress,
                                  controls=data.test.control_splits(), state_ablation=run.state_ablation)
        blur = data.test.frame_records("blur_px")
        if blur:
            metrics["frame_blur"] = {key: {seq: frames[: run.eval_max_frames] for seq, frames in seqs.items()}
                                     for key, seqs in blur.items()}
        metrics["cost"] = model_cost(model, run.measure_runtime and runtime, run.runtime_frames)
        middle = list(splits)[len(splits) // 2]
        save_samples(model, splits[middle][0], run_dir / "samples.npz")
        metrics.update(run_id=run.run_id, samples="samples.npz")
        fileio.write_json(run_dir / "provenance.json", run_provenance(run, data, time.time() - start, metrics["cost"]))
        fileio.write_json(run_dir / "metrics.json", metrics)
        for leftover in ("checkpoint.keras", "checkpoint.json"):
            (run_dir / leftover).unlink(missing_ok=True)
        return "done"


def runtime_pending(run: RunConfig, results: Path) -> bool:
    """A complete run whose speed is still to be measured (its sweep ran runs side by side)."""
    return _untimed_metrics(run, results) is not None


def _untimed_metrics(run: RunConfig, results: Path) -> dict | None:
    """The ``metrics.json`` of a complete run whose speed is still to be measured, else None."""
    path = results / run.run_id / "metrics.json"
    if not (run.measure_runtime and path.exists()):
        return None
    metrics = fileio.read_json(path)
    return metrics if metrics["cost"].get("runtime") is None else None


def measure_runtime(run: RunConfig, results: Path) -> None:
    """Time a complete run's saved model and add the figures to its ``metrics.json`` (atomically).

    Run after the sweep's other work, so no other process shares the machine while it is timed.
    Checked again under the run's lock: another sweep may have timed it meanwhile.
    """
    from bench_deblur.evaluate import model_cost
    from bench_deblur.registry import load_model

    run_dir = results / run.run_id
    with run_lock(run_dir) as mine:
        metrics = _untimed_metrics(run, results) if mine else None
        if metrics is not None:
            model = load_model(run_dir / "model.keras")
            metrics["cost"] = model_cost(model, True, run.runtime_frames)
            fileio.write_json(run_dir / "metrics.json", metrics)


def check_run(run: RunConfig, results: Path) -> None:
    """Refuse a run folder whose ``config.json`` records a different model, recipe, seed or data.

    A folder without ``config.json`` (new, or killed before it was written) is free. Results
    written before runs recorded their data count as the preset's synthetic data.
    """
    path = results / run.run_id / "config.json"
    if not path.is_file():
        return
    old = fileio.read_json(path)
    if not isinstance(old, dict) or not isinstance(old.get("model"), dict):
        raise UserError(f"{path.parent}: holds a config.json that is not a bench-deblur run config; choose another --out")
    new = json.loads(json.dumps(to_dict(run), default=fileio._jsonable))
    old_model, old_train = old["model"], to_dict(TrainConfig()) | (old.get("train") or {})  # fields added since: defaults
    diffs = [f"model.{k} {old_model.get(k)!r}, here {new['model'][k]!r}"
             for k in ("name", "m", "width", "global_skip", "kwargs") if old_model.get(k) != new["model"][k]]
    diffs += [f"train.{k} {old_train.get(k)!r}, here {v!r}"
              for k, v in new["train"].items() if k not in _FREE_TRAIN_FIELDS and old_train.get(k) != v]
    if old.get("seed") != new["seed"]:
        diffs.append(f"seed {old.get('seed')!r}, here {new['seed']!r}")
    for side in ("train", "test"):
        old_id = ((old.get("data") or {}).get(side) or {}).get("id")
        new_id = (new["data"].get(side) or {}).get("id")
        if old_id and new_id and old_id != new_id:
            diffs.append(f"{side} data {old_id!r}, here {new_id!r}")
    if diffs:
        label = old.get("label") or old_model.get("name")
        raise UserError(f"{path.parent}: holds a run of {label} with other settings ({'; '.join(diffs[:3])}"
                        f"{'; ...' if len(diffs) > 3 else ''}); choose another --out (or --results)")


def check_data(run: RunConfig, data: RunData) -> None:
    """The crop and clip length must fit the training and validation data; checked before config.json is written."""
    from PIL import Image

    cfg = run.train
    where = data.train.root
    seqs = data.train.train_sequences()
    usable = [s for s in seqs if len(s.blur) >= cfg.clip_len]
    if not usable:
        longest = max((len(s.blur) for s in seqs), default=0)
        raise UserError(f"--clip-len {cfg.clip_len}: no training sequence in {where} has that many frames "
                        f"(the longest has {longest})")
    for seq in usable:
        try:
            with Image.open(seq.blur[0]) as image:
                width, height = image.size
        except OSError:
            continue  # an unreadable frame is reported, with its name, by the loader
        if cfg.crop > min(width, height):
            raise UserError(f"--crop {cfg.crop}: larger than the {width}x{height} frames of {seq.blur[0].parent}")
    if not any(len(s.blur) >= cfg.clip_len for s in data.train.validation_sequences()):
        raise UserError(f"--clip-len {cfg.clip_len}: no validation sequence of {where} "
                        f"({data.train.describe()['validation']}) has that many frames")
