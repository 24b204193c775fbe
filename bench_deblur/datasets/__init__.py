"""Paired blurry/sharp video datasets: the synthetic ones and the public GoPro, DVD and BSD layouts.

- :mod:`~bench_deblur.datasets.table`: the layouts, one ``Layout`` record each (the one place a layout is declared);
- :mod:`~bench_deblur.datasets.frames`: the sequences of one split folder and reading their frames;
- :mod:`~bench_deblur.datasets.layouts`: dataset roots, their splits, validation and identity;
- :mod:`~bench_deblur.datasets.plan`: what a command trains and tests on, synthesised under a lock when missing.
"""

from bench_deblur.datasets.frames import Sequence, find_sequences, load_sequence, read_frame
from bench_deblur.datasets.layouts import MANIFEST, Dataset, RunData, detect_layout, open_dataset
from bench_deblur.datasets.table import LAYOUTS, SYNTHETIC, Layout

__all__ = ["LAYOUTS", "MANIFEST", "SYNTHETIC", "Dataset", "Layout", "RunData", "Sequence", "detect_layout",
           "find_sequences", "load_sequence", "open_dataset", "read_frame"]
