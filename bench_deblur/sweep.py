"""The benchmark sweep: expand a spec into runs, then train and evaluate every run not yet complete.

A run lives in ``<results>/<run_id>/`` and is complete only when its
``metrics.json`` exists; every file is written atomically and ``metrics.json``
last, so a kill at any moment leaves either a complete run or one that a rerun
resumes from its last checkpoint. A lock file per run (``flock``, released by
the kernel even on SIGKILL) keeps two processes off the same run.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import keras

from bench_deblur import fileio
from bench_deblur.config import ModelConfig, RunConfig, SweepSpec, run_from_dict, sweep_from_dict, to_dict
from bench_deblur.errors import UserError
from bench_deblur.registry import build_model, model_description, model_names, non_default_kwargs
from bench_deblur.synth import dataset_hash, test_splits

REPO = Path(__file__).resolve().parent.parent


def run_id(model: ModelConfig, seed: int) -> str:
    extras = "".join(f"-{k}_{v}" for k, v in sorted(model.kwargs.items()))
    return f"{model.name}-m{model.m}{extras}-s{seed}"


def expand(spec: SweepSpec) -> list[RunConfig]:
    """All runs of a sweep, each once, with the report groups it belongs to."""
    runs: dict[str, RunConfig] = {}

    def add(name: str, m: int, seed: int, group: str, variant: str | None = None, runtime: bool = False, **kwargs) -> None:
        model = ModelConfig(name, m=m, width=spec.width, global_skip=spec.global_skip, kwargs=non_default_kwargs(name, kwargs))
        rid = run_id(model, seed)
        run = runs.setdefault(rid, RunConfig(
            run_id=rid, preset=spec.preset, model=model, train=dataclasses.replace(spec.train), synth=spec.synth,
            seed=seed, runtime_frames=spec.runtime_frames, eval_max_frames=spec.eval_max_frames, scale_note=spec.scale_note,
        ))
        run.groups = sorted(set(run.groups) | {group})
        run.variant = variant or run.variant
        run.measure_runtime = run.measure_runtime or runtime

    for name in spec.main_models or model_names():
        for seed in spec.seeds:
            add(name, 1, seed, "main", runtime=seed == spec.seeds[0])
    for name in spec.inputs_models or model_names():
        for m in spec.inputs_m:
            add(name, m, spec.seeds[0], "inputs")
    add(spec.placement_none_model, 1, spec.seeds[0], "placement", variant="none")
    for placement in spec.placements:
        add(spec.placement_model, 1, spec.seeds[0], "placement", variant=placement, **{spec.placement_kwarg: placement})
    return list(runs.values())


def shard(runs: list[RunConfig], i: int, n: int) -> list[RunConfig]:
    """Deterministic split: sort by run id, then every n-th run starting at i-1."""
    return sorted(runs, key=lambda r: r.run_id)[i - 1 :: n]


def is_complete(run_dir: Path) -> bool:
    return (run_dir / "metrics.json").exists()


@contextmanager
def run_lock(run_dir: Path) -> Iterator[bool]:
    """Yield True if this process holds the run's lock, False if another process does."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(run: RunConfig, data_root: Path, wall_time_s: float, device: dict) -> dict:
    """Where a number came from: code version, software, hardware, data and seed."""
    from bench_deblur.speed import versions

    status = _git("status", "--porcelain")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "versions": versions(("bench-deblur", "keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "numpy", "scikit-image")),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "backend": keras.backend.backend(),
        "device": device.get("device"),
        "dataset_manifest_hash": dataset_hash(data_root),
        "seed": run.seed,
        "wall_time_s": round(wall_time_s, 2),
        "argv": sys.argv,
    }


def run_one(run: RunConfig, results: Path, data_root: Path, progress: bool = True, deadline: float | None = None) -> str:
    """Train (or resume) and evaluate one run; returns 'complete', 'done', 'locked' or 'partial'.

    The model and recipe are checked before anything is written, so a bad
    config leaves no trace in the results folder.
    """
    from bench_deblur.evaluate import evaluate_splits, model_cost, save_samples
    from bench_deblur.datasets import find_sequences
    from bench_deblur.train import train

    from bench_deblur.train import CHECKPOINT, TrainingDiverged

    run_dir = results / run.run_id
    run.train.validate()
    check_run(run, results)
    if is_complete(run_dir):
        return "complete"
    if _build(run.model).trainable_weights:
        check_data(run, data_root)
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
            model, finished = train(run, run_dir, data_root, progress=progress, deadline=deadline)
        except TrainingDiverged as exc:
            if (run_dir / CHECKPOINT).exists():
                raise
            raise TrainingDiverged(f"{str(exc).split(';')[0]}; no checkpoint was saved yet (it diverged in the first "
                                   "epoch); try a lower --lr") from None
        if not finished:
            return "partial"
        with fileio.atomic_path(run_dir / "model.keras") as tmp:
            model.save(tmp)
        splits = {tau: data_root / split for tau, split in test_splits(data_root).items()}
        metrics = evaluate_splits(model, splits, max_frames=run.eval_max_frames, progress=progress)
        metrics["cost"] = model_cost(model, run.measure_runtime, run.runtime_frames)
        middle = sorted(splits)[len(splits) // 2]
        save_samples(model, find_sequences(splits[middle])[0], run_dir / "samples.npz")
        metrics.update(run_id=run.run_id, samples="samples.npz")
        fileio.write_json(run_dir / "provenance.json", provenance(run, data_root, time.time() - start, metrics["cost"]))
        fileio.write_json(run_dir / "metrics.json", metrics)
        for leftover in ("checkpoint.keras", "checkpoint.json"):
            (run_dir / leftover).unlink(missing_ok=True)
        return "done"


# Settings that do not change what a run computes; a rerun may change them.
_FREE_TRAIN_FIELDS = ("workers", "tensorboard")


def _build(model: ModelConfig, build: bool = True):
    return build_model(model.name, m=model.m, width=model.width, global_skip=model.global_skip, build=build, **model.kwargs)


def check_run(run: RunConfig, results: Path) -> None:
    """Refuse a run folder whose ``config.json`` records a different model, recipe or seed.

    A folder without ``config.json`` (new, or killed before it was written) is
    free. Called before anything is written, by ``run_one`` and for a whole sweep
    by ``check_runs``.
    """
    import json

    from bench_deblur.config import TrainConfig

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
    if diffs:
        label = old.get("label") or old_model.get("name")
        raise UserError(f"{path.parent}: holds a run of {label} with other settings ({'; '.join(diffs[:3])}"
                        f"{'; ...' if len(diffs) > 3 else ''}); choose another --out (or --results)")


def check_models(runs: list[RunConfig]) -> None:
    """Build each distinct model of ``runs`` once: unknown names and bad options are a ``UserError``."""
    built = set()
    for run in runs:
        key = (run.model.name, run.model.m, run.model.width, run.model.global_skip, repr(sorted(run.model.kwargs.items())))
        if key not in built:
            run.train.validate()
            _build(run.model, build=False)  # constructing is enough to check; weights would cost seconds per sweep
            built.add(key)


def check_runs(runs: list[RunConfig], results: Path) -> None:
    """Check every run of a sweep before anything is written: its model builds and its folder is free or its own."""
    check_models(runs)
    for run in runs:
        check_run(run, results)


def check_data(run: RunConfig, data_root: Path) -> None:
    """The crop and clip length must fit the training (and validation) data; checked before config.json is written."""
    from PIL import Image

    from bench_deblur.datasets import find_sequences

    cfg = run.train
    train_root = data_root / "train"
    seqs = find_sequences(train_root)
    usable = [s for s in seqs if len(s.blur) >= cfg.clip_len]
    if not usable:
        longest = max((len(s.blur) for s in seqs), default=0)
        raise UserError(f"--clip-len {cfg.clip_len}: no training sequence in {train_root} has that many frames "
                        f"(the longest has {longest})")
    for seq in usable:
        try:
            with Image.open(seq.blur[0]) as image:
                width, height = image.size
        except OSError:
            continue  # an unreadable frame is reported, with its name, by the loader
        if cfg.crop > min(width, height):
            raise UserError(f"--crop {cfg.crop}: larger than the {width}x{height} frames of {seq.blur[0].parent}")
    val_root = data_root / "val" if (data_root / "val").is_dir() else train_root
    if val_root != train_root and not any(len(s.blur) >= cfg.clip_len for s in find_sequences(val_root)):
        raise UserError(f"--clip-len {cfg.clip_len}: no validation sequence in {val_root} has that many frames")


def _ray_task(run_dict: dict, results: str, data_root: str) -> tuple[str, str]:
    run = run_from_dict(run_dict)
    return run.run_id, run_one(run, Path(results), Path(data_root), progress=False)


def execute(
    runs: list[RunConfig],
    results: Path,
    data_root: Path,
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
    max_minutes: float | None = None,
) -> dict[str, str]:
    """Run every run not yet complete; returns {run_id: status}.

    ``local`` runs them one after another in this process (one TensorFlow import,
    one model at a time). ``ray`` submits each as a task to a Ray cluster at
    ``ray_address`` (or ``RAY_ADDRESS``); the results and data folders must be on a
    file system that every node sees. ``max_minutes`` stops starting new work and
    stops training at the next checkpoint once passed, for chunked sessions.
    """
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    todo = [r for r in runs if not is_complete(results / r.run_id)]
    status = {r.run_id: "complete" for r in runs if r not in todo}
    if executor == "ray":
        status.update(_execute_ray(todo, results, data_root, ray_address))
        return status
    if executor != "local":
        raise UserError(f"--executor {executor!r}: expected local or ray")
    for i, run in enumerate(todo, 1):
        if deadline is not None and time.time() > deadline:
            status[run.run_id] = "not started (time budget)"
            continue
        if progress:
            print(f"[{i}/{len(todo)}] {run.run_id}", flush=True)
        status[run.run_id] = run_one(run, results, data_root, progress=progress, deadline=deadline)
    return status


def _execute_ray(runs: list[RunConfig], results: Path, data_root: Path, address: str | None) -> dict[str, str]:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray: Ray is not installed; pip install 'bench-deblur[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(_ray_task)
    refs = [task.remote(to_dict(run), str(results.resolve()), str(data_root.resolve())) for run in runs]
    return dict(ray.get(refs))


def write_spec(spec: SweepSpec, results: Path) -> None:
    fileio.write_json(results / "sweep.json", to_dict(spec))


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """A sweep spec from JSON (the format of ``sweep.json``); bad files are a one-line error."""
    data = fileio.read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object with the fields of SweepSpec")
    try:
        spec = sweep_from_dict(data)
        spec.validate()
    except (TypeError, ValueError, UserError) as exc:
        raise UserError(f"{path}: not a valid sweep spec ({exc})") from None
    return spec
