"""The dataset layouts, one ``Layout`` record each: the one place a layout is declared.

``frames`` reads a split folder's sequences by the records' frame folders, ``layouts`` reads a
dataset root by their splits, and the CLI takes its ``--layout`` choices and help from them;
none of them names a layout. docs/datasets.md says how to add one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Layout:
    """One shape a paired blurry/sharp video dataset ships in.

    name: the ``--layout`` value. dataset: the name reports show; lower-cased, it starts the dataset id.
    blur: a sequence's blurry frame folder, candidates in order of preference (the first one present is
    read; ``--blur-dir`` picks another). sharp: its sharp frame folder. expected: what a dataset root
    holds, for error messages. validation: the dataset's own validation split folder, if any;
    ``validation_optional``: a root without it holds out training sequences instead (else it is an
    error). test_list: a JSON file of published test sequence names (``{"test": [...]}``): a root
    holding every sequence in one folder tests on those and trains on the rest. synthetic: made by
    ``bench-deblur data`` (a ``manifest.json`` lists one test split per blur length tau and pins every
    frame): the one layout a missing or empty ``--data`` folder is synthesised into.
    """

    name: str
    dataset: str
    blur: tuple[str, ...]
    sharp: str
    expected: str
    validation: str | None = None
    validation_optional: bool = False
    test_list: Path | None = None
    synthetic: bool = False

    @property
    def blur_choice(self) -> bool:
        """Whether a dataset root offers a choice of blurry folder (synthetic data is written with the first only)."""
        return len(self.blur) > 1 and not self.synthetic


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (
    Layout("native", "synthetic", ("blur", "blur_gamma"), "sharp",
           "manifest.json, train/, val/ and test_tauXX/ from 'bench-deblur data'",
           validation="val", validation_optional=True, synthetic=True),
    Layout("gopro", "GoPro", ("blur", "blur_gamma"), "sharp", "train/ and test/, each <sequence>/blur and <sequence>/sharp"),
    Layout("dvd", "DVD", ("input",), "GT", "<sequence>/input and <sequence>/GT folders (or train/ and test/ holding them)",
           test_list=DATA / "dvd_test.json"),
    Layout("bsd", "BSD", ("Blur/RGB",), "Sharp/RGB",
           "train/, valid/ and test/, each <sequence>/Blur/RGB and <sequence>/Sharp/RGB", validation="valid"),
)}
"""Every layout, in the order choices and messages list them; where two share their sequence folders (native
and gopro), detecting a folder of sequences names the first."""


def _first_per_shape(layouts) -> tuple[Layout, ...]:
    first: dict[tuple, Layout] = {}
    for layout in layouts:
        first.setdefault((layout.blur, layout.sharp), layout)
    return tuple(first.values())


SHAPES = _first_per_shape(LAYOUTS.values())
"""One layout per distinct pair of sequence folders, the first declared: what a folder of sequences is detected as."""

SYNTHETIC = next(layout for layout in LAYOUTS.values() if layout.synthetic)
"""The layout ``bench-deblur data`` writes."""


def listing(words: list[str], last: str = "or") -> str:
    """'a, b or c'."""
    return f"{', '.join(words[:-1])} {last} {words[-1]}" if len(words) > 1 else "".join(words)
