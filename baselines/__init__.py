"""The benchmark's models, one file per model family.

Every module here (except those starting with ``_``) is imported by
``bench_deblur.registry`` on first use; each registers its factories with
``@register("name")``. Shared machinery lives in ``base.py`` (cell base class,
RNN driver, model) and ``blocks.py`` (the paper's layers); streaming them is the
harness's job (``bench_deblur.streaming``).
"""
