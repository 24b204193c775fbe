"""Shared test set-up: quiet TensorFlow, a fixed backend, a private frame cache, small helpers."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(autouse=True, scope="session")
def _frame_cache(tmp_path_factory):
    """The tests' throwaway datasets are decoded into a temporary folder, not the user's ~/.cache."""
    os.environ["BENCH_DEBLUR_CACHE"] = str(tmp_path_factory.mktemp("frame-cache"))
