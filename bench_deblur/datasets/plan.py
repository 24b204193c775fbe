"""What a command trains and tests on: the data it names, planned first, then synthesised under a lock and listed.

Planning only names the datasets (and so the results folder), so every check can run before
anything is made or written; ``prepare_data`` then makes the synthetic data still missing and
lists every split. ``bench-deblur run`` and ``train`` and ``benchmarks/learning_curve.py`` share
this path, so two of them started on the same empty folder synthesise it once. Messages name
the command-line options the choices come from.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from bench_deblur.datasets.frames import Sequence, find_sequences
from bench_deblur.datasets.layouts import MANIFEST, Dataset, RunData, blur_choosers, detect_layout, open_dataset
from bench_deblur.datasets.table import LAYOUTS, SYNTHETIC
from bench_deblur.errors import UserError, writing_to

if TYPE_CHECKING:
    from bench_deblur.config import SynthConfig


@dataclass(frozen=True)
class DataChoice:
    """The data options of a command: --data, --layout, --blur-dir, --test-data and --test-layout.

    ``synthetic_root`` is where the preset's synthetic data is made when ``data`` is None (default data/PRESET).
    """

    data: str | os.PathLike | None = None
    layout: str = "auto"
    test_data: str | os.PathLike | None = None
    test_layout: str = "auto"
    blur_dir: str | None = None
    synthetic_root: str | os.PathLike | None = None


class DataPlan(NamedTuple):
    """What runs train and are tested on, and whether the training data is synthetic data still to be made."""

    data: RunData
    synthesise: bool


def plan_data(choice: DataChoice, preset: str) -> DataPlan:
    """What runs train on and are tested on (the test data defaults to the training data).

    Nothing is made or listed yet: this names the results folder before anything is checked or written.
    """
    train, synthesise = training_data(choice, preset)
    test = open_dataset(Path(choice.test_data), choice.test_layout) if choice.test_data else train
    if choice.blur_dir:
        if not (train.kind.blur_choice or test.kind.blur_choice):
            raise UserError(f"--blur-dir {choice.blur_dir}: only the {blur_choosers()} layout has a choice of "
                            "blurry folder")
        train, test = (d.with_blur_dir(choice.blur_dir) if d.kind.blur_choice else d for d in (train, test))
    return DataPlan(RunData(train, test), synthesise)


def prepare_data(plan: DataPlan, synth: SynthConfig, quiet: bool) -> RunData:
    """The planned data, synthesised first when still to be made, every split listed (bad folders: one line)."""
    data, synthesise_first = plan
    if synthesise_first:
        synthesise(data.train.root, synth, quiet)
    data.check()
    return data


def synthesise(root: Path, cfg: SynthConfig, quiet: bool, replace: bool = True) -> None:
    """Make the synthetic dataset ``cfg`` in ``root`` under its lock (a no-op when it is up to date).

    ``replace=False`` refuses a folder that holds another synthetic dataset (``data`` without --overwrite).
    """
    from bench_deblur.synth import make_dataset

    with writing_to(root), synthesis_lock(root):
        kwargs = {} if replace else {"replace": False}
        make_dataset(root, cfg, progress=not quiet, workers=os.cpu_count() or 1, **kwargs)


def training_data(choice: DataChoice, preset: str) -> tuple[Dataset, bool]:
    """The dataset to train on, and whether it is synthetic data still to be made (the preset's, or an empty folder).

    A folder that holds a dataset is read as it is, never synthesised into; its layout is detected or checked.
    """
    from bench_deblur.synth.writer import MARKER

    root = Path(choice.data or choice.synthetic_root or Path("data") / preset)
    unmade = not (root / MANIFEST).exists() and (not root.exists() or (root / MARKER).exists()
                                                 or (root.is_dir() and not any(root.iterdir())))
    layout = choice.layout
    synthesisable = layout == "auto" or LAYOUTS[layout].synthetic
    if choice.data is None or (synthesisable and unmade):
        if not synthesisable:
            raise UserError(f"--layout {layout}: needs --data, the {layout} dataset's folder ({root} is synthetic)")
        return Dataset(root, SYNTHETIC.name), True
    return open_dataset(root, layout), False


def synthesis_lock(root: Path) -> contextlib.AbstractContextManager[bool]:
    """An exclusive lock on ``<root>.lock`` beside the dataset folder while it is made.

    Two commands started together on an empty folder would otherwise synthesise
    the same dataset at once; the second waits here, then finds it up to date.
    """
    from bench_deblur import fileio

    return fileio.flocked(root.parent / f"{root.name}.lock")


class EvaluationData(NamedTuple):
    """What ``evaluate`` scores: its test splits, the dataset's control splits, and a line that says which."""

    splits: dict[int | str, list[Sequence]]
    controls: dict[str, tuple[dict, list[Sequence]]]
    what: str


def evaluation_data(data: Path, layout: str = "auto", blur_dir: str | None = None) -> EvaluationData:
    """A dataset root's test split(s), or every sequence of a folder of sequences."""
    if not data.exists():
        raise UserError(f"--data {data}: no such folder")
    if detect_layout(data) is None:  # a folder of sequences: every sequence in it
        return EvaluationData({data.name: find_sequences(data, layout, blur_dir)}, {}, f"every sequence in {data}")
    dataset = open_dataset(data, layout)
    dataset = dataset.with_blur_dir(blur_dir) if blur_dir else dataset
    splits, controls = dataset.test_splits(), dataset.control_splits()
    return EvaluationData(splits, controls, f"{dataset.name} ({dataset.id}), test split: {dataset.describe()['test']}")
