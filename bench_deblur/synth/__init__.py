"""Procedural high-frame-rate video and Eq. 1 blur, written as a native dataset.

Why synthetic: the paper's GoPro 240-fps footage cannot be redistributed, and a benchmark must
run anywhere offline. Three modules, one job each:

- :mod:`~bench_deblur.synth.textures`: texture sources (held-out photos, dead-leaves images);
- :mod:`~bench_deblur.synth.scene`: one scene (camera path, objects), rendered at any time ``t``;
- :mod:`~bench_deblur.synth.writer`: the plan of scenes per split, Eq. 1 blur, PNGs, manifest.

What to render is a :class:`bench_deblur.config.SynthConfig`, declared with the other configs.
"""

from bench_deblur.synth.textures import PHOTOS, TEST_PHOTOS, TRAIN_PHOTOS
from bench_deblur.synth.writer import blur_window, make_dataset, spacing_for

__all__ = ["PHOTOS", "TEST_PHOTOS", "TRAIN_PHOTOS", "blur_window", "make_dataset", "spacing_for"]
