"""Dataset roots: which splits a dataset has, what a run trains, validates and tests on, and its identity.

The layouts (the shapes the datasets ship in) are the records of ``table.LAYOUTS``; docs/datasets.md
has their sources. A root holds train/ and test/ (and the layout's own validation split, if any), or,
for synthetic data, the splits its manifest.json lists; a layout with a published test list (DVD)
may also hold every sequence in one folder: the listed ones are the test split, the rest train. A
copy already split into train/ and test/ folders is read as it is.

Validation always comes from the training side, never from a test split: the dataset's own
validation split (val/, valid/); else the last tenth of the training sequences, held out from
training; else, with a single training sequence, that sequence itself (nothing to hold out).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from bench_deblur.datasets.frames import Sequence, find_sequences, has_layout, natural_key
from bench_deblur.datasets.table import LAYOUTS, SYNTHETIC, Layout, listing
from bench_deblur.errors import UserError
from bench_deblur.fileio import read_json

MANIFEST = "manifest.json"
HOLD_OUT = 0.1  # share of training sequences held out for validation when a dataset has no validation split
_SPLIT_FOLDERS = ("train", *dict.fromkeys(layout.validation for layout in LAYOUTS.values() if layout.validation), "test")


@dataclass(frozen=True)
class Dataset:
    """A dataset root read in one layout; ``blur_dir`` picks GoPro's blurry folder (blur or blur_gamma)."""

    root: Path
    layout: str
    blur_dir: str | None = None

    @property
    def kind(self) -> Layout:
        """The record of this dataset's layout."""
        return LAYOUTS[self.layout]

    @property
    def name(self) -> str:
        return self.kind.dataset

    @property
    def id(self) -> str:
        """Names the dataset in results folders and provenance: dataset, folder name and blurry folder."""
        parts = [self.kind.dataset.lower(), self.root.resolve().name] + ([self.blur_dir] if self.blur_dir else [])
        return re.sub(r"[^a-z0-9_.]+", "-", "-".join(parts).lower()).strip("-")

    def with_blur_dir(self, blur_dir: str) -> Dataset:
        if not self.kind.blur_choice:
            raise UserError(f"--blur-dir {blur_dir}: only the {blur_choosers()} layout has a choice of blurry folder "
                            f"({self.root} is {self.layout})")
        return replace(self, blur_dir=blur_dir)

    def _split(self, name: str) -> list[Sequence]:
        """The sequences of split folder ``name``; a missing folder is a one-line error naming the root."""
        folder = self.root / name
        if not folder.is_dir():
            raise UserError(f"{self.root}: no {name}/ folder (the {self.layout} layout has {self.kind.expected})")
        return find_sequences(folder, self.layout, self.blur_dir)

    def _flat(self) -> bool:
        """Whether every sequence is in the root, split by the layout's published test list."""
        return self.kind.test_list is not None and not (self.root / "test").is_dir()

    def _listed(self) -> tuple[list[Sequence], list[Sequence]]:
        """(training, test) sequences of a root holding every video: the published list is the test split."""
        listed = test_list_names(self.kind)
        sequences = find_sequences(self.root, self.layout)
        test = [s for s in sequences if s.name in listed]  # detect_layout found at least one
        train = [s for s in sequences if s.name not in listed]
        if not train:
            raise UserError(f"{self.root}: holds only {self.name}'s published test videos; no training videos left")
        return train, test

    def test_splits(self) -> dict[int | str, list[Sequence]]:
        """Test sequences by split: per blur length tau for synthetic data, else one split named 'test'."""
        if self.kind.synthetic:
            return {tau: self._split(name) for tau, name in manifest_test_splits(self.root).items()}
        return {"test": self._listed()[1] if self._flat() else self._split("test")}

    def control_splits(self) -> dict[str, tuple[dict, list[Sequence]]]:
        """Control test sets of a synthetic dataset (same scenes, other camera or exposure): {name: (info, sequences)}.

        Kept apart from ``test_splits``: they answer "what do the models do when the blur is different", and
        must not enter the mean over tau. Public layouts have none.
        """
        if not self.kind.synthetic:
            return {}
        controls = read_json(self.root / MANIFEST).get("control_splits") or {}
        return {name: (info, self._split(info["split"])) for name, info in sorted(controls.items())}

    def frame_records(self, field: str) -> dict[str, dict[str, list]]:
        """A per-frame record of the manifest (e.g. ``blur_px``) by test split key (str tau or control name) and sequence.

        Empty for public layouts and for synthetic data written before such records existed.
        """
        if not self.kind.synthetic:
            return {}
        manifest = read_json(self.root / MANIFEST)
        keys = {name: str(tau) for tau, name in manifest["test_splits"].items()}
        keys.update({info["split"]: name for name, info in (manifest.get("control_splits") or {}).items()})
        found = {}
        for split, key in sorted(keys.items(), key=lambda kv: kv[1]):
            records = {seq: rec[field] for seq, rec in manifest["splits"][split]["sequences"].items() if field in rec}
            if records:
                found[key] = dict(sorted(records.items()))
        return found

    def _training_side(self) -> tuple[list[Sequence], list[Sequence] | None]:
        """(training sequences, the dataset's own validation sequences or None)."""
        if self._flat():
            return self._listed()[0], None
        own = self.kind.validation
        if own and self.kind.validation_optional and not (self.root / own).is_dir():
            own = None
        return self._split("train"), (self._split(own) if own else None)

    def train_sequences(self) -> list[Sequence]:
        """What training draws clips from: the training split minus any held-out validation sequences."""
        train, own = self._training_side()
        return train if own is not None else train[: len(train) - _held_out(len(train))]

    def validation_sequences(self) -> list[Sequence]:
        """What training is monitored on (see the module docstring); never a test split."""
        train, own = self._training_side()
        if own is not None:
            return own
        held = _held_out(len(train))
        return train[len(train) - held :] if held else train

    def describe(self) -> dict:
        """What a report says about this dataset's splits (names, sequence counts, the validation rule)."""
        train, own = self._training_side()
        held = 0 if own is not None else _held_out(len(train))
        train_where = "every video not in the published test list" if self._flat() else "train/"
        if own is not None:
            validation = f"{self.kind.validation}/ ({len(own)} sequences, the dataset's own)"
        elif held:
            validation = f"the last {held} of the {len(train)} training sequences, held out from training"
        else:
            validation = "the one training sequence itself (too few to hold one out)"
        splits = self.test_splits()
        test_count = sum(len(s) for s in splits.values())
        if self.kind.synthetic:
            test = f"{', '.join(manifest_test_splits(self.root).values())} ({test_count} sequences; one split per tau)"
        elif self._flat():
            test = f"the {test_count} published test videos of data/{self.kind.test_list.name} present here"
        else:
            test = f"test/ ({test_count} sequences)"
        return {"id": self.id, "name": self.name, "layout": self.layout, "root": str(self.root),
                "blur_dir": self.blur_dir, "train": f"{train_where} ({len(train) - held} sequences)",
                "validation": validation, "test": test}

    def hash(self) -> dict:
        """Pins the data: sha256 of manifest.json (it lists every frame's hash) or of every frame's name and size."""
        if self.kind.synthetic:
            return {"sha256": manifest_hash(self.root), "of": MANIFEST}
        train, own = self._training_side()
        sequences = train + (own or []) + [s for split in self.test_splits().values() for s in split]
        lines = sorted({f"{p.relative_to(self.root).as_posix()}\t{p.stat().st_size}"
                        for s in sequences for p in (*s.blur, *s.sharp)})
        return {"sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
                "of": f"names and sizes of its {len(lines)} frame files"}


def _held_out(count: int) -> int:
    return math.ceil(HOLD_OUT * count) if count >= 2 else 0


@dataclass(frozen=True)
class RunData:
    """What runs train and validate on, and what they are tested on: the same dataset unless cross-dataset."""

    train: Dataset
    test: Dataset

    @property
    def cross(self) -> bool:
        return self.train != self.test

    def results_name(self, preset: str) -> str:
        """The results (and reports) folder: the preset for synthetic data, else the preset and dataset ids."""
        if not self.cross and self.train.kind.synthetic:
            return preset
        return f"{preset}-{self.train.id}" + (f"-on-{self.test.id}" if self.cross else "")

    def describe(self) -> dict:
        train = self.train.describe()
        test = self.test.describe()
        return {"train": {k: v for k, v in train.items() if k != "test"},
                "test": {k: v for k, v in test.items() if k not in ("train", "validation")},
                "cross_dataset": self.cross}

    def provenance(self) -> dict:
        return {"train": {"id": self.train.id, **self.train.hash()}, "test": {"id": self.test.id, **self.test.hash()}}

    def check(self) -> None:
        """List every sequence a run reads (train, validation, test): bad folders fail before anything is written."""
        self.train.train_sequences()
        self.train.validation_sequences()
        self.test.test_splits()


def open_dataset(root: Path, layout: str = "auto") -> Dataset:
    """Read ``root`` as a dataset in ``layout`` (``auto`` detects it); a mismatch is a one-line error."""
    root = Path(root)
    if layout != "auto" and layout not in LAYOUTS:
        raise UserError(f"--layout {layout}: expected one of auto, {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found")
    found = detect_layout(root)
    kind = LAYOUTS.get(layout)
    if found is None and kind and kind.test_list and any(has_layout(folder, layout) for folder in _subfolders(root)):
        raise UserError(f"{root}: none of {kind.dataset}'s published test videos "
                        f"({', '.join(sorted(test_list_names(kind)))}) is here; the {layout} layout tests on that list "
                        f"(bench_deblur/data/{kind.test_list.name}) or on a test/ folder")
    if found is None:
        expected = "; ".join(f"{k.name}: {k.expected}" for k in LAYOUTS.values() if layout in ("auto", k.name))
        raise UserError(f"{root}: not a dataset root ({expected})")
    if layout not in ("auto", found):
        raise UserError(f"{root}: not the {layout} layout (expected {kind.expected}); it looks like {found}")
    return Dataset(root, found)


def detect_layout(root: Path) -> str | None:
    """The layout of a dataset root, or None when ``root`` is not one (e.g. a folder of sequences)."""
    if (root / MANIFEST).is_file():
        return SYNTHETIC.name
    public = [kind for kind in LAYOUTS.values() if not kind.synthetic]
    found = set()
    for split in _SPLIT_FOLDERS:
        if (root / split).is_dir():
            found |= {kind.name for folder in _subfolders(root / split) for kind in public if has_layout(folder, kind.name)}
    if len(found) > 1:
        raise UserError(f"{root}: its splits mix the {' and '.join(sorted(found))} layouts")
    if found:
        return found.pop()
    for kind in public:
        if kind.test_list and any(f.name in test_list_names(kind) and has_layout(f, kind.name) for f in _subfolders(root)):
            return kind.name
    return None


def test_list_names(kind: Layout) -> set[str]:
    """The published test sequence names of a layout with a ``test_list``."""
    return set(json.loads(kind.test_list.read_text())["test"])


def blur_choosers() -> str:
    """The layouts whose roots offer a choice of blurry folder, for messages: 'gopro'."""
    return listing([kind.name for kind in LAYOUTS.values() if kind.blur_choice], "and")


def _subfolders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: natural_key(p.name))


def manifest_test_splits(root: Path) -> dict[int, str]:
    """``{tau: split folder name}`` of a synthetic dataset, in increasing tau."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path}: file not found (not a generated dataset)")
    manifest = read_json(path)
    return {int(tau): name for tau, name in sorted(manifest["test_splits"].items(), key=lambda kv: int(kv[0]))}


def manifest_hash(root: Path) -> str:
    """sha256 of ``manifest.json``: it lists a hash of every frame, so it pins the whole dataset."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path}: file not found (not a generated dataset)")
    return hashlib.sha256(path.read_bytes()).hexdigest()
