"""The benchmark sweep: expand a spec into runs, then run every run not yet complete (``runner.run_one``).

Runs go one after another in this process, or one Ray task each; ``runner`` says what a run
writes and how a killed one resumes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from bench_deblur import fileio, parallel
from bench_deblur.config import ModelConfig, RunConfig, SweepSpec, run_from_dict, sweep_from_dict, to_dict
from bench_deblur.datasets import RunData
from bench_deblur.errors import UserError
from bench_deblur.registry import model_names, non_default_kwargs, option_choices
from bench_deblur.runner import check_run, is_complete, measure_runtime, run_one, runtime_pending


def run_id(model: ModelConfig, seed: int) -> str:
    extras = "".join(f"-{k}_{v}" for k, v in sorted(model.kwargs.items()))
    return f"{model.name}-m{model.m}{extras}-s{seed}"


def resolve(spec: SweepSpec) -> SweepSpec:
    """``spec`` with its placement group filled in from the registry where unset (see ``SweepSpec``).

    The placement model is the one registered model that declares choices for ``placement_kwarg``
    (strcnn_dtb's DTB placements, declared in ``baselines/placements.py``); its placements are
    those choices in its order, less the values that are another model; the run without a
    placement ('none') is the model its value 'none' is the same as.
    """
    declared = option_choices(spec.placement_kwarg)
    model = spec.placement_model
    if model is None and len(declared) > 1:
        raise UserError(f"placement_model: {', '.join(declared)} all declare choices for their "
                        f"{spec.placement_kwarg!r} option; name one")
    model = model or next(iter(declared), None)
    choices = declared.get(model)
    placements = spec.placements
    if placements is None:
        placements = [v for v in choices.labels if v not in choices.same_as] if choices else []
    if placements and model is None:
        raise UserError(f"placements={placements!r}: no registered model declares choices for a "
                        f"{spec.placement_kwarg!r} option; set placement_model")
    none_model = spec.placement_none_model or (choices.same_as.get("none") if choices else None)
    return dataclasses.replace(spec, placement_model=model, placements=list(placements), placement_none_model=none_model)


def expand(spec: SweepSpec) -> list[RunConfig]:
    """All runs of a sweep, each once, with the report groups it belongs to."""
    spec = resolve(spec)
    unknown = sorted(set(spec.model_options) - set(model_names()))
    if unknown:
        raise UserError(f"model_options: unknown model(s) {', '.join(unknown)}; expected registered names "
                        f"({', '.join(model_names())})")
    runs: dict[str, RunConfig] = {}

    def add(name: str, m: int, seed: int, group: str, variant: str | None = None, runtime: bool = False,
            ablation: bool = False, **kwargs) -> None:
        model = spec.model(name, m, **kwargs)
        model.kwargs = non_default_kwargs(name, model.kwargs)
        rid = run_id(model, seed)
        run = runs.setdefault(rid, RunConfig(
            run_id=rid, preset=spec.preset, model=model, train=dataclasses.replace(spec.train), synth=spec.synth,
            seed=seed, runtime_frames=spec.runtime_frames, eval_max_frames=spec.eval_max_frames, scale_note=spec.scale_note,
        ))
        run.groups = sorted(set(run.groups) | {group})
        run.variant = variant or run.variant
        run.measure_runtime = run.measure_runtime or runtime
        run.state_ablation = run.state_ablation or ablation

    for name in spec.main_models or model_names():
        for seed in spec.seeds:
            add(name, 1, seed, "main", runtime=seed == spec.seeds[0], ablation=True)  # the report ablates the main group
    for name in spec.inputs_models or model_names():
        for m in spec.inputs_m:
            add(name, m, spec.seeds[0], "inputs")
    if spec.placement_none_model:
        add(spec.placement_none_model, 1, spec.seeds[0], "placement", variant="none")
    for placement in spec.placements:
        add(spec.placement_model, 1, spec.seeds[0], "placement", variant=placement, **{spec.placement_kwarg: placement})
    return list(runs.values())


def shard(runs: list[RunConfig], i: int, n: int) -> list[RunConfig]:
    """Deterministic split: sort by run id, then every n-th run starting at i-1."""
    return sorted(runs, key=lambda r: r.run_id)[i - 1 :: n]


def check_models(runs: list[RunConfig]) -> None:
    """Build each distinct model of ``runs`` once: unknown names and bad options are a ``UserError``."""
    built = set()
    for run in runs:
        key = (run.model.name, run.model.m, run.model.width, run.model.global_skip, repr(sorted(run.model.kwargs.items())))
        if key not in built:
            run.model.build(build=False)  # constructing is enough to check; weights would cost seconds per sweep
            built.add(key)


def check_runs(runs: list[RunConfig], results: Path) -> None:
    """Check every run of a sweep before anything is written: its model builds and its folder is free or its own."""
    check_models(runs)
    for run in runs:
        check_run(run, results)


def execute(
    runs: list[RunConfig],
    results: Path,
    data: RunData,
    executor: str = "local",
    ray_address: str | None = None,
    progress: bool = True,
    max_minutes: float | None = None,
    jobs: int = 1,
) -> dict[str, str]:
    """Run every run not yet complete; returns {run_id: status}.

    ``local`` runs them in this process one after another, or with ``jobs`` > 1 in that many
    worker processes, each with its share of the cores (``parallel``); speeds are then timed
    afterwards, one model at a time. ``ray`` submits each as a task to a Ray cluster at
    ``ray_address`` (or ``RAY_ADDRESS``); the results and data folders must be on a
    file system that every node sees. ``max_minutes`` stops starting new work and
    stops training at the next checkpoint once passed, for chunked sessions.
    """
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    todo = [r for r in runs if not is_complete(results / r.run_id)]
    status = {r.run_id: "complete" for r in runs if r not in todo}
    if executor == "ray":
        status.update(_execute_ray(todo, results, data, ray_address))
        return status
    if executor != "local":
        raise UserError(f"--executor {executor!r}: expected local or ray")
    if jobs > 1:
        calls = [(to_dict(run), str(results), data, deadline, False) for run in todo]
        for i, (rid, state) in enumerate(parallel.imap(
                _task, calls, jobs, ordered=False, initializer=parallel.start_training_worker,
                initargs=(parallel.thread_env(jobs),)), 1):
            status[rid] = state
            if progress:
                print(f"[{i}/{len(todo)}] {rid}: {state}", flush=True)
    else:
        for i, run in enumerate(todo, 1):
            if progress:
                print(f"[{i}/{len(todo)}] {run.run_id}", flush=True)
            status[run.run_id] = _run_before(deadline, run, results, data, progress)
    for run in runs:
        if runtime_pending(run, results):
            if progress:
                print(f"timing {run.run_id}", flush=True)
            measure_runtime(run, results)
    return status


def _run_before(deadline: float | None, run: RunConfig, results: Path, data: RunData, progress: bool,
                runtime: bool = True) -> str:
    """``run_one``, unless the time budget is spent."""
    if deadline is not None and time.time() > deadline:
        return "not started (time budget)"
    return run_one(run, results, data, progress=progress, deadline=deadline, runtime=runtime)


def _task(run_dict: dict, results: str, data: RunData, deadline: float | None, runtime: bool) -> tuple[str, str]:
    """One run in another process (a ``parallel`` worker or a Ray task), from its config as a dict.

    A ``parallel`` worker leaves the speed to be timed later, when no other run shares the machine.
    """
    run = run_from_dict(run_dict)
    return run.run_id, _run_before(deadline, run, Path(results), data, progress=False, runtime=runtime)


def _execute_ray(runs: list[RunConfig], results: Path, data: RunData, address: str | None) -> dict[str, str]:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray: Ray is not installed; pip install 'bench-deblur[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(_task)
    data = RunData(*(dataclasses.replace(d, root=d.root.resolve()) for d in (data.train, data.test)))
    refs = [task.remote(to_dict(run), str(results.resolve()), data, None, True) for run in runs]
    return dict(ray.get(refs))


def write_spec(spec: SweepSpec, results: Path) -> None:
    """``sweep.json``: the spec as run, its placement group filled in (``resolve``)."""
    fileio.write_json(results / "sweep.json", to_dict(resolve(spec)))


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """A sweep spec from JSON (the format of ``sweep.json``); bad files are a one-line error."""
    data = fileio.read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object with the fields of SweepSpec")
    try:
        spec = sweep_from_dict(data)  # checked as it is built
    except (TypeError, ValueError, UserError) as exc:
        raise UserError(f"{path}: not a valid sweep spec ({exc})") from None
    return spec
