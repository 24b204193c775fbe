"""Paired blurry/sharp video datasets: the synthetic ones and the public GoPro, DVD and BSD layouts.

- :mod:`~bench_deblur.datasets.frames`: the sequences of one split folder and reading their frames;
- :mod:`~bench_deblur.datasets.layouts`: dataset roots, their splits, validation and identity.
"""

from bench_deblur.datasets.frames import Sequence, find_sequences, load_sequence, read_frame
from bench_deblur.datasets.layouts import LAYOUT_NAMES, MANIFEST, Dataset, RunData, detect_layout, open_dataset

__all__ = ["LAYOUT_NAMES", "MANIFEST", "Dataset", "RunData", "Sequence", "detect_layout", "find_sequences",
           "load_sequence", "open_dataset", "read_frame"]
