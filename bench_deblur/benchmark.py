"""A whole benchmark, as ``bench-deblur run`` does it: prepare the sweep, run it, report it.

Three steps, so a caller can say what is about to run between them (the CLI prints the
shard's run count before the runs' own progress). Every check comes first: the spec,
its models, the data and every run folder, before sweep.json or any data is written.
An OSError without a file name (a full disk) names the folder being written to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench_deblur.config import RunConfig, SweepSpec
from bench_deblur.datasets import RunData
from bench_deblur.datasets.plan import DataChoice, plan_data, prepare_data
from bench_deblur.errors import UserError, writing_to
from bench_deblur.sweep import check_models, check_runs, execute, expand, shard, write_spec


@dataclass
class Benchmark:
    """A sweep ready to run: this shard's runs, their results folder (sweep.json written) and their data, made."""

    spec: SweepSpec
    results: Path
    runs: list[RunConfig]
    data: RunData


@dataclass
class Outcome:
    """The status of each run, by run id (``sweep.execute``)."""

    status: dict[str, str]

    @property
    def unfinished(self) -> list[str]:
        """Run ids neither complete nor done (a time budget or an error stopped them): a rerun resumes them."""
        return sorted(k for k, v in self.status.items() if v not in ("complete", "done"))


def prepare_benchmark(spec: SweepSpec, *, results_root: Path, data: DataChoice | None = None,
                      part: tuple[int, int] = (1, 1), quiet: bool = False, spec_path: str | None = None) -> Benchmark:
    """Check ``spec`` and every run, make the data, write sweep.json; the runs of shard ``part`` = (i, n).

    ``data`` defaults to the preset's synthetic data; ``spec_path``, the file the spec was read from, is named
    in its errors.
    """
    try:  # every model name and option is checked before anything is written (values were, when spec was built)
        every_run = expand(spec)
        check_models(every_run)
    except UserError as exc:
        raise UserError(f"{spec_path}: not a valid sweep spec ({exc})") if spec_path else exc from None
    plan = plan_data(data or DataChoice(), spec.preset)
    results = Path(results_root) / plan.data.results_name(spec.preset)
    check_runs(every_run, results)  # and no run folder holds another run
    run_data = prepare_data(plan, spec.synth, quiet)
    for run in every_run:
        run.data = run_data.describe()
    with writing_to(results):
        write_spec(spec, results)
    return Benchmark(spec, results, shard(every_run, *part), run_data)


def run_benchmark(bench: Benchmark, *, executor: str = "local", ray_address: str | None = None, jobs: int = 1,
                  max_minutes: float | None = None, progress: bool = True) -> Outcome:
    """Run every run of ``bench`` not yet complete (``sweep.execute``)."""
    with writing_to(bench.results):
        return Outcome(execute(bench.runs, bench.results, bench.data, executor=executor, ray_address=ray_address,
                               progress=progress, max_minutes=max_minutes, jobs=jobs))


def report_benchmark(bench: Benchmark, reports_root: Path, progress: bool = True) -> Path:
    """Rebuild the report of ``bench``'s results folder in ``reports_root``; returns its folder."""
    from bench_deblur.report import build_report

    with writing_to(bench.results):
        return build_report(bench.results, Path(reports_root) / bench.results.name, progress=progress)
