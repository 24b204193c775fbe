"""The ``bench-deblur`` command line: data, models, train, evaluate, run, report, deblur.

Heavy imports (Keras and its backend) happen inside the commands, after
``--backend`` has been applied, so ``--help`` is instant and the backend choice
takes effect. Any ``UserError`` is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import Field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_type_hints

from bench_deblur import parallel
from bench_deblur.config import MAX_SEED, ConfigError, TrainConfig
from bench_deblur.datasets.plan import DataChoice, evaluation_data, plan_data, prepare_data, synthesise
from bench_deblur.datasets.table import LAYOUTS, SYNTHETIC, listing
from bench_deblur.errors import UserError, writing_to

if TYPE_CHECKING:  # imported by the commands themselves, after --backend is applied
    from bench_deblur.config import SweepSpec

EPILOG = "Run 'bench-deblur COMMAND --help' for the options of each command."


_BACKEND_HINTS = {
    "jax": "JAX is not installed; pip install 'bench-deblur[jax]' (and \"jax[cuda12]\" for an NVIDIA GPU)",
    "torch": "PyTorch is not installed, and it is not a supported extra of bench-deblur; use tensorflow (the default) or jax",
}

# Keras's own backends; an unknown KERAS_BACKEND makes ``import keras`` raise a long traceback.
KERAS_BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")


def _backend(args: argparse.Namespace) -> None:
    """Select the Keras backend before Keras is imported; silence TensorFlow's start-up chatter.

    TensorFlow 2.21 writes absl/oneDNN banner lines straight to file descriptor 2
    on import, whatever the log level, which would bury one-line errors; it is
    imported here with that descriptor pointed at /dev/null. A failed import
    still raises a normal Python exception afterwards.
    """
    if getattr(args, "backend", None):
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    streaming = args.func in (cmd_evaluate, cmd_deblur)
    if streaming:  # frame-sized buffers go back to the OS after each step
        from bench_deblur.runtime import return_freed_memory

        return_freed_memory()
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in KERAS_BACKENDS:
        raise UserError(f"KERAS_BACKEND {backend!r}: not a Keras backend; expected tensorflow (the default) or jax")
    if backend in _BACKEND_HINTS and importlib.util.find_spec(backend) is None:
        option = "--backend" if getattr(args, "backend", None) else "KERAS_BACKEND"
        raise UserError(f"{option} {backend}: {_BACKEND_HINTS[backend]}")
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or args.func in (cmd_report,):
        return
    from bench_deblur.fileio import stderr_to_devnull
    from bench_deblur.runtime import without_optional_imports

    # Streaming commands also leave out the optional packages TensorFlow and Keras load at start-up (160 MiB).
    lean = without_optional_imports() if streaming else contextlib.nullcontext()
    with stderr_to_devnull(), contextlib.suppress(ImportError), lean:  # Keras reports a missing TensorFlow itself
        import tensorflow  # noqa: F401

        if streaming:
            import keras  # noqa: F401  # loaded inside the block too: Keras's own optional imports happen here


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: <what>`` and exit status 2, no usage dump."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def _int_at_least(minimum: int):
    """An argparse type for integers >= minimum, with a message that says what was expected."""
    word = "positive" if minimum == 1 else "non-negative"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {word} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {word} integer, got {value}")
        return value

    return parse


_positive_int, _non_negative_int = _int_at_least(1), _int_at_least(0)


def _seed(text: str) -> int:
    """An argparse type for a seed: an integer from 0 to MAX_SEED (what NumPy's global generator takes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {value}")
    return value


def _positive_float(text: str) -> float:
    """An argparse type for a positive, finite number (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _option(text: str) -> tuple[str, object]:
    """KEY=VALUE, with VALUE parsed as JSON when it can be (numbers, true/false), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n), 1-based."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n with integers, e.g. 1/2, got {text!r}") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"expected i/n with 1 <= i <= n, got {text!r}")
    return i, n


def _distribute(args: argparse.Namespace) -> None:
    """Data-parallel training of one run over every local accelerator (``keras.distribution``, JAX only)."""
    if not getattr(args, "data_parallel", False):
        return
    import keras

    if keras.backend.backend() != "jax":
        raise UserError(f"--data-parallel: needs the JAX backend (got {keras.backend.backend()}); add --backend jax")
    keras.distribution.set_distribution(keras.distribution.DataParallel())


def cmd_models(args: argparse.Namespace) -> None:
    from bench_deblur.cost import count_macs
    from bench_deblur.registry import build_model, model_description, model_names

    rows = []
    for name in model_names():
        model = build_model(name, m=args.m, width=args.width)
        rows.append((name, model.count_params(), count_macs(model, 720, 1280)["gmacs"], model_description(name)))
    print(f"models at m={args.m}, width {args.width}; GMACs per 1280x720 output frame (steady state, biases not counted)")
    print(f"{'model':<14} {'params':>12} {'GMACs':>8}  description")
    for name, params, gmacs, text in rows:
        print(f"{name:<14} {params:>12,} {gmacs:>8.1f}  {text}")


def cmd_data(args: argparse.Namespace) -> None:
    from bench_deblur.config import preset

    spec = preset(args.preset)
    cfg = spec.synth
    overrides = {k: v for k, v in {"seed": args.seed, "gamma": args.gamma, "keep_hfr": args.keep_hfr or None,
                                   "motion": args.motion}.items() if v is not None}
    if args.size:
        overrides.update(height=args.size, width=args.size)
    if args.taus:
        overrides.update(test_taus=tuple(args.taus))
    cfg = type(cfg)(**{**cfg.__dict__, **overrides})
    root = Path(args.root or Path("data") / args.preset)
    synthesise(root, cfg, args.quiet, replace=args.overwrite)
    print(f"dataset ready: {root}")


def _train_flag(name: str) -> str:
    """The ``bench-deblur train`` flag of TrainConfig field ``name``."""
    return "--" + name.replace("_", "-")


def _train_config(args: argparse.Namespace) -> tuple[SweepSpec, TrainConfig]:
    """The preset's recipe with the train flags given; a bad value names the flag, as the user typed it."""
    from bench_deblur.config import preset

    spec = preset(args.preset)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    try:
        return spec, replace(spec.train, **overrides)
    except ConfigError as exc:
        raise UserError(f"{_train_flag(exc.name)}: {exc.problem}") from None


def cmd_train(args: argparse.Namespace) -> None:
    from bench_deblur.config import RunConfig
    from bench_deblur.runner import run_one
    from bench_deblur.sweep import check_runs

    _distribute(args)
    spec, train_cfg = _train_config(args)
    model = spec.model(args.model, args.m, **dict(args.option))  # the preset's size of this model, then the options
    model = replace(model, width=args.width if args.width is not None else model.width,
                    global_skip=args.global_skip or spec.global_skip)
    run = RunConfig(
        run_id=Path(args.out).name, preset=args.preset, model=model, train=train_cfg, synth=spec.synth, seed=args.seed,
        measure_runtime=args.runtime, eval_max_frames=spec.eval_max_frames, scale_note=spec.scale_note, groups=["main"],
    )
    check_runs([run], Path(args.out).parent)  # the model and --out folder, before any data is made or anything written
    data = prepare_data(plan_data(_data_choice(args), spec.preset), spec.synth, args.quiet)
    with writing_to(args.out):
        status = run_one(run, Path(args.out).parent, data, progress=not args.quiet)
    print(f"{run.run_id}: {status} ({args.out})")


def _data_choice(args: argparse.Namespace) -> DataChoice:
    """What a run trains and is tested on, from the options ``_data_arguments`` adds."""
    return DataChoice(args.data, args.layout, args.test_data, args.test_layout, args.blur_dir)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from bench_deblur import fileio
    from bench_deblur.evaluate import evaluate_splits, model_cost
    from bench_deblur.metrics import METRICS, Protocol
    from bench_deblur.registry import build_model, load_model, model_names

    if args.out:
        _check_out_file(Path(args.out))
    model = build_model(args.model, m=args.m) if args.model in model_names() else load_model(args.model)
    splits, controls, what = evaluation_data(Path(args.data), args.layout, args.blur_dir)
    protocol = Protocol(color=args.color, crop_border=args.crop_border)
    _check_frame_sizes(splits, controls, args.crop_border)
    metrics = evaluate_splits(model, splits, protocol=protocol, max_frames=args.max_frames, progress=not args.quiet,
                              controls=controls)
    metrics["cost"] = model_cost(model, args.runtime)
    if args.out:
        fileio.write_json(args.out, metrics)
    print(f"data: {what}")
    key = "tau" if all(isinstance(k, int) for k in splits) else "split"
    heads = {m.name: f"{m.title} {m.unit}".strip() for m in METRICS.values()}
    print(f"{key:>8} " + " ".join(f"{head:>9}" for head in heads.values()))
    for split, row in metrics["per_tau"].items():  # one decimal more than the report's tables
        cells = ["n/a" if row[m.name] is None else f"{row[m.name]:.{m.digits + 1}f}" for m in METRICS.values()]
        print(f"{split:>8} " + " ".join(f"{cell:>{max(9, len(head))}}" for cell, head in zip(cells, heads.values())))
    ident = metrics["identity_mean"]
    for name, row in metrics.get("controls", {}).items():
        print(f"control {name} ({row['label']}): PSNR {row['psnr']:.3f} dB (blurry input: {row['blurry']['psnr']:.3f} dB)")
    print(f"mean PSNR {metrics['mean']['psnr']:.3f} dB (blurry input: {ident['psnr']:.3f} dB); protocol: {metrics['protocol']}")


def _check_out_file(out: Path) -> None:
    """``--out FILE``: refused before any work when it is a folder or cannot be made."""
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; expected the path of a JSON file to write")
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"--out {out}: cannot write here, {existing} is a file, not a folder")


def _check_frame_sizes(splits: dict, controls: dict, crop_border: int) -> None:
    """Every sequence's frames must leave at least 11x11 pixels (SSIM's window) after --crop-border; one header each."""
    from bench_deblur.video import image_shape

    lists = [seqs for seqs in splits.values() if isinstance(seqs, list)]
    lists += [seqs for _, seqs in controls.values()]
    for seqs in lists:
        for seq in seqs:
            first = Path(seq.blur[0])
            h, w = image_shape(first)[:2]
            if min(h, w) - 2 * crop_border < 11:
                need = 11 + 2 * crop_border
                if crop_border:
                    raise UserError(
                        f"--crop-border {crop_border}: sequence {seq.name} has {w}x{h} frames ({first}); scoring needs "
                        f"at least {need}x{need} (11x11 for SSIM's window plus {crop_border} px cropped at each edge)"
                    )
                raise UserError(f"{first}: sequence {seq.name} has {w}x{h} frames; scoring needs at least 11x11 "
                                "pixels (SSIM's window)")


def _jobs(args: argparse.Namespace) -> int:
    """--jobs, else one process with --data-parallel, two on a CPU with two or more cores and one on an accelerator."""
    return parallel.resolve_jobs(1 if args.jobs is None and args.data_parallel else args.jobs)


def cmd_run(args: argparse.Namespace) -> None:
    from bench_deblur.benchmark import prepare_benchmark, report_benchmark, run_benchmark
    from bench_deblur.config import preset
    from bench_deblur.sweep import load_spec

    _distribute(args)
    spec = load_spec(args.spec) if args.spec else preset(args.preset)
    bench = prepare_benchmark(spec, results_root=Path(args.results), data=_data_choice(args), part=args.shard,
                              quiet=args.quiet, spec_path=args.spec)
    i, n = args.shard
    print(f"preset {spec.preset}: {len(bench.runs)} runs in shard {i}/{n} -> {bench.results}")
    jobs = min(_jobs(args), max(1, len(bench.runs)))  # never more worker processes than runs
    if args.jobs is not None and jobs > (os.cpu_count() or 1):
        print(f"warning: --jobs {args.jobs}: {jobs} processes on {os.cpu_count() or 1} CPU core(s); each gets one "
              "thread and they compete for the cores", file=sys.stderr)
    outcome = run_benchmark(bench, executor=args.executor, ray_address=args.ray_address, jobs=jobs,
                            max_minutes=args.max_minutes, progress=not args.quiet)
    if outcome.unfinished:
        print(f"{len(outcome.unfinished)} run(s) not finished ({', '.join(outcome.unfinished)}); "
              "rerun the same command to resume.")
    if not args.no_report:
        print(f"report: {report_benchmark(bench, Path(args.reports), progress=not args.quiet)}")


def cmd_report(args: argparse.Namespace) -> None:
    from bench_deblur.report import build_report

    results = Path(args.results)
    if not results.is_dir():
        raise UserError(f"--results {results}: no such folder")
    def is_preset(folder: Path) -> bool:
        return (folder / "sweep.json").exists() or any(folder.glob("*/config.json"))

    presets = [results] if is_preset(results) else sorted(p for p in results.iterdir() if p.is_dir() and is_preset(p))
    if not presets:
        raise UserError(f"--results {results}: no benchmark results found (expected run folders with config.json)")
    for folder in presets:
        print(f"report: {build_report(folder, Path(args.out) / folder.name, progress=not args.quiet)}")


def cmd_deblur(args: argparse.Namespace) -> None:
    from bench_deblur.video import deblur_video

    summary = deblur_video(
        Path(args.input), Path(args.output), args.model, side_by_side=args.side_by_side, max_frames=args.max_frames,
        dtype=args.dtype, fps=args.fps, progress=not args.quiet, overwrite=args.overwrite,
    )
    height, width = summary["size"]
    rate = "" if summary["fps"] is None else f", {summary['fps']:.1f}".rstrip("0").rstrip(".") + " fps"
    print(f"{summary['frames']} frames, {width}x{height}{rate} -> {summary['output']}")


def cmd_speed(args: argparse.Namespace) -> None:
    from bench_deblur import speed

    speed.run_from_args(args)


LAYOUT_CHOICES = ["auto", *LAYOUTS]
BLUR_DIR_HELP = "; ".join(f"{k.dataset}'s blurry folder: {k.blur[0]} (default) or {listing(list(k.blur[1:]))}"
                          for k in LAYOUTS.values() if k.blur_choice)


def _data_arguments(p: argparse.ArgumentParser) -> None:
    """What a run trains and is tested on; docs/datasets.md describes each layout."""
    public = listing([k.dataset for k in LAYOUTS.values() if not k.synthetic])
    p.add_argument("--data", help=f"dataset folder to train (and test) on: {SYNTHETIC.dataset} (default data/PRESET, "
                                  f"synthesised when missing) or a {public} folder")
    p.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES,
                   help=f"layout of --data: {', '.join(f'{k.name} ({k.dataset})' for k in LAYOUTS.values())} "
                   "(default: detected)")
    p.add_argument("--blur-dir", help=BLUR_DIR_HELP)
    p.add_argument("--test-data", help="test on this dataset instead (cross-dataset; default: --data's test split)")
    p.add_argument("--test-layout", default="auto", choices=LAYOUT_CHOICES, help="layout of --test-data (default: detected)")


def _train_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, from its metadata (help, choices, rule); an unset flag keeps the preset's."""
    hints = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if hints[f.name] is bool:
            p.add_argument(_train_flag(f.name), action="store_true", default=None, help=f.metadata["help"])
        else:
            p.add_argument(_train_flag(f.name), type=_field_parser(f, hints[f.name]),
                           choices=f.metadata["choices"] or None, help=f.metadata["help"])


def _field_parser(f: Field, hint: Any) -> Callable[[str], Any]:
    """An argparse type for a TrainConfig field: its type (int, float or str) and the rule ``__post_init__`` checks."""
    base = next(t for t in get_args(hint) or (hint,) if t is not type(None))
    expected = f"expected {f.metadata['expected']}"

    def parse(text: str) -> Any:
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected}, got {text!r}") from None
        if not f.metadata["ok"](value):
            raise argparse.ArgumentTypeError(f"{expected}, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bench-deblur",
        description="Reproducible benchmark for online video deblurring (CNN, STRCNN, STRCNN+DTB; Kim et al. ICCV 2017).",
        epilog=EPILOG,
    )
    parser.add_argument("--backend", choices=["tensorflow", "jax", "torch"], help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("run", help="the whole benchmark: data, training, evaluation, report (resumable)",
                       description="Make the data when missing, train and evaluate every run of the preset not yet complete, "
                                   "then write the report. Safe to interrupt and rerun: complete runs are skipped, "
                                   "partial runs resume from their last checkpoint.")
    p.add_argument(
        "--preset",
        default="quick",
        help="smoke (pipeline check, ~2 min on a 2-core CPU), quick (default, ~12 min), "
        "cpu (~2 h on 2 cores), full (one GPU, in chunks) or paper (the paper's exact recipe, days of GPU)",
    )
    p.add_argument("--spec", help="a sweep spec JSON file (a results folder's sweep.json is one) instead of --preset")
    p.add_argument(
        "--results", default="results", help="results root; runs go to RESULTS/PRESET/RUN_ID (default: results)"
    )
    p.add_argument("--reports", default="reports", help="reports root (default: reports)")
    _data_arguments(p)
    p.add_argument(
        "--shard", type=_shard, default=(1, 1), help="run only shard i of n, e.g. 2/3 (deterministic split by run id)"
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="local (one run after another) or ray (one task per run)",
    )
    p.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)")
    p.add_argument(
        "--jobs",
        type=_positive_int,
        help="local runs at a time, each in its own process with its share of "
        "the cores (default: 2 on a CPU with 2+ cores, where small models leave cores idle; 1 on a GPU); "
        "speeds are timed afterwards, one model at a time",
    )
    p.add_argument(
        "--max-minutes",
        type=_positive_float,
        help="stop at the next checkpoint after this many minutes (rerun to continue)",
    )
    p.add_argument("--no-report", action="store_true", help="do not rebuild the report at the end")
    p.add_argument("--data-parallel", action="store_true", help="split each batch over all local GPUs (JAX backend)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "report",
        help="rebuild tables, plots, REPORT.md and report.html from results on disk",
        description="Rebuild reports/PRESET/ from the results alone (no model is run). RESULTS may be the results "
        "root (every preset in it) or one preset's folder.",
    )
    p.add_argument("--results", default="results", help="results root or one preset folder (default: results)")
    p.add_argument("--out", default="reports", help="reports root (default: reports)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("models", help="list registered models with their parameter counts and GMACs per 720p frame")
    p.add_argument(
        "--width", type=float, default=1.0, help="width multiplier (default 1.0 = the paper's 64/32 channels)"
    )
    p.add_argument("--m", type=_non_negative_int, default=1, help="look-ahead; the model sees 2m+1 frames (default 1)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("data", help="synthesise a preset's high-frame-rate dataset (Eq. 1 blur)")
    p.add_argument("--preset", default="quick", help="whose data settings to use (default quick)")
    p.add_argument("--root", help="output folder (default data/PRESET)")
    p.add_argument("--seed", type=int, help="generator seed")
    p.add_argument("--size", type=_positive_int, help="frame height and width in pixels")
    p.add_argument("--taus", type=int, nargs="+", help="blur lengths of the test sets, e.g. 7 9 11 13 15")
    p.add_argument("--gamma", type=float, help="average in linear light with this gamma (BSD-style, e.g. 2.2)")
    p.add_argument("--keep-hfr", action="store_true", help="also write the high-frame-rate sharp frames (hfr/)")
    p.add_argument(
        "--motion", choices=["handheld", "steady"], help="camera motion (default handheld; steady = constant speed)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a different synthetic dataset already in --root")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train and evaluate one model into one run folder (resumable)")
    p.add_argument("model", help="registered model name (see 'bench-deblur models')")
    p.add_argument("--out", required=True, help="run folder to write (config, history, checkpoints, metrics)")
    p.add_argument(
        "--preset",
        default="quick",
        help="recipe and data defaults to start from: smoke, quick (default), cpu, full or paper (the paper's exact recipe)",
    )
    _data_arguments(p)
    p.add_argument("--m", type=_non_negative_int, default=1, help="look-ahead; the model sees 2m+1 frames (default 1)")
    p.add_argument("--width", type=float, help="width multiplier (default: the preset's for this model)")
    p.add_argument("--global-skip", action="store_true", help="output = centre blurry frame + prediction")
    p.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. placement=mid_decoder",
    )
    p.add_argument(
        "--seed", type=_seed, default=0, help=f"seed of initialisation and batches, 0 to {MAX_SEED} (default 0)"
    )
    _train_arguments(p)
    p.add_argument("--runtime", action="store_true", help="also time streaming fps at 640x480 and 1280x720")
    p.add_argument("--data-parallel", action="store_true", help="split each batch over all local GPUs (JAX backend)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a model on test data: per-tau, per-sequence PSNR / SSIM / temporal")
    p.add_argument("model", help="a .keras file, a results run folder, or a registered model name (e.g. identity)")
    p.add_argument(
        "--data",
        required=True,
        help="a dataset root (its test split; all tau splits of synthetic data) or a folder of sequences",
    )
    p.add_argument(
        "--layout", default="auto", choices=LAYOUT_CHOICES, help="folder layout of --data (default: detected)"
    )
    p.add_argument("--blur-dir", help=BLUR_DIR_HELP)
    p.add_argument("--m", type=_non_negative_int, default=1, help="look-ahead, for a registered model name")
    p.add_argument("--color", default="rgb", choices=["rgb", "y"], help="PSNR/SSIM on RGB or on the Y channel")
    p.add_argument("--crop-border", type=_non_negative_int, default=0, help="pixels ignored at each border")
    p.add_argument("--max-frames", type=_positive_int, help="evaluate only the first N frames of each sequence")
    p.add_argument("--runtime", action="store_true", help="also time streaming fps at 640x480 and 1280x720")
    p.add_argument("--out", help="write the metrics JSON here")
    p.set_defaults(func=cmd_evaluate)

    from bench_deblur import speed

    p = sub.add_parser(
        "speed",
        help="GPU/CPU speed benchmark: streaming frames/s, TFLOP/s, fp32 and bf16, batched streams",
        description="Time one recurrent step per frame with the device synchronised, after warm-up; see benchmarks/README.md.",
    )
    speed.add_arguments(p)
    p.set_defaults(func=cmd_speed)

    p = sub.add_parser("deblur", help="deblur your own video or frame folder online, frame by frame")
    p.add_argument(
        "input",
        help="video file (mp4, avi, mov, mkv, gif, ...), an image, or a folder of frames (png/jpg/bmp/tif); "
        "grey becomes RGB, alpha is dropped",
    )
    p.add_argument("-o", "--output", required=True, help="output video file, or a folder for PNG frames")
    p.add_argument("--model", required=True, help="a .keras file or a results run folder")
    p.add_argument("--side-by-side", action="store_true", help="write input and output next to each other")
    p.add_argument("--max-frames", type=_positive_int, help="stop after N frames")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="compute dtype")
    p.add_argument("--fps", type=float, help="output frame rate (default: the input's, else 30)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write PNG frames into a folder that holds other files "
        "(same-named frames are replaced, nothing else is touched; never the input's folder)",
    )
    p.set_defaults(func=cmd_deblur)
    return parser


def _where(args: argparse.Namespace) -> str:
    """The folder named by the command's options, for an OSError without a file name (``writing_to`` names one)."""
    for name in ("out", "output", "root", "results", "data"):
        if getattr(args, name, None):
            return str(getattr(args, name))
    return os.getcwd()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with parallel.sigterm_as_interrupt():  # temporary files are cleaned up, as after Ctrl-C
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        _backend(args)
        args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (`... | head`): stop quietly, as `cat` would
        with contextlib.suppress(Exception):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 141
    except OSError as exc:  # unwritable output, a file where a folder should be, a full disk...
        print(f"error: {exc.filename or _where(args)}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        terminated = parallel.terminated()
        print(f"{'terminated' if terminated else 'interrupted'}; everything already written is kept", file=sys.stderr)
        return 143 if terminated else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
