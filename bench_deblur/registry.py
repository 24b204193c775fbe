"""The model registry: a file in ``baselines/`` with ``@register("name")`` is all a model needs.

Like BasicSR's ``ARCH_REGISTRY``: the ``baselines`` package imports each of its
modules on first use, every model factory registers itself under a name, and the
harness only ever asks the registry. Models can also come from outside the repo:
every ``*.py`` file in the folders listed in ``BENCH_DEBLUR_PLUGINS`` (``os.pathsep``
separated) and every ``bench_deblur.baselines`` entry point is imported as well.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench_deblur.errors import UserError

PLUGIN_ENV = "BENCH_DEBLUR_PLUGINS"
ENTRY_POINT_GROUP = "bench_deblur.baselines"


@dataclass(frozen=True)
class Choices:
    """The values a model option takes, in the model's own order, each with the label reports show.

    ``same_as``: values with which the model is exactly another registered model (DTB placement
    'none' is STRCNN), so that a sweep reuses that model's run instead of training it twice.
    """

    labels: dict[str, str]
    same_as: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A registered model: its factory, the one-line description shown in reports, and its options' choices."""

    name: str
    factory: Callable[..., Any]
    description: str
    choices: dict[str, Choices] = field(default_factory=dict)


_REGISTRY: dict[str, Entry] = {}
_loaded = False


def register(name: str, choices: dict[str, Choices] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``factory(m=..., width=..., global_skip=..., **kwargs) -> keras.Model``.

    The first line of the factory's docstring becomes the model's description. ``choices`` declares
    the values of options that take one of a fixed set (option name -> ``Choices``).
    """

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.factory.__qualname__ != factory.__qualname__:
            raise ValueError(f"model name {name!r} is registered twice ({existing.factory.__module__} and {factory.__module__})")
        doc = inspect.getdoc(factory) or name
        _REGISTRY[name] = Entry(name, factory, doc.strip().splitlines()[0], dict(choices or {}))
        return factory

    return decorate


def _load_all() -> None:
    """Import the bundled baselines, plugin folders and entry points, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import baselines

    for info in pkgutil.iter_modules(baselines.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"baselines.{info.name}")
    for folder in filter(None, os.environ.get(PLUGIN_ENV, "").split(os.pathsep)):
        _import_folder(Path(folder))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def _import_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise UserError(f"{PLUGIN_ENV}: {folder} is not a folder of model files")
    for path in sorted(folder.glob("*.py")):
        module_name = f"bench_deblur_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)


def model_names() -> list[str]:
    """All registered model names, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> Entry:
    """The registry entry for ``name``; an unknown name is a ``UserError`` listing the known ones."""
    _load_all()
    if name not in _REGISTRY:
        raise UserError(f"model {name!r}: unknown; expected one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_description(name: str) -> str:
    return get(name).description


def option_choices(option: str) -> dict[str, Choices]:
    """Model name -> the ``Choices`` it declares for ``option``, for every model that declares some, sorted by name."""
    _load_all()
    return {name: entry.choices[option] for name, entry in sorted(_REGISTRY.items()) if option in entry.choices}


def non_default_kwargs(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Drop options equal to the factory's defaults, so one model has one run id however it is spelled."""
    params = inspect.signature(get(name).factory).parameters
    return {k: v for k, v in kwargs.items() if k not in params or params[k].default != v}


def build_model(name: str, m: int = 1, width: float = 1.0, global_skip: bool = False, *, build: bool = True, **kwargs: Any):
    """Build the registered model ``name``; its weights exist on return (``count_params`` is exact).

    ``build=False`` only constructs it (no weights): a cheap check of the name and options.
    """
    if not isinstance(m, int) or isinstance(m, bool) or m < 0:
        raise UserError(f"m={m!r}: expected a non-negative integer look-ahead (2m+1 input frames)")
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not math.isfinite(width) or not width > 0:
        raise UserError(f"width={width!r}: expected a positive width multiplier")
    if not isinstance(global_skip, bool):
        raise UserError(f"global_skip={global_skip!r}: expected true or false")
    entry = get(name)
    try:
        inspect.signature(entry.factory).bind(m=m, width=width, global_skip=global_skip, **kwargs)
    except TypeError as exc:
        raise UserError(f"model {name!r}: bad options {kwargs} ({exc})") from None
    try:
        model = entry.factory(m=m, width=width, global_skip=global_skip, **kwargs)
    except ValueError as exc:
        raise UserError(f"model {name!r}: {exc}") from None
    if build:
        model.build((None, None, None, None, 3))
    return model


def load_model(path: str | os.PathLike):
    """Load a trained model from a ``.keras`` file or a results run folder (its ``model.keras``).

    Anything else (a missing path, an unfinished run, a truncated archive, another
    Keras model) is a one-line ``UserError`` naming the path.
    """
    import zipfile

    import keras

    path = Path(path)
    if not path.exists() and path.suffix != ".keras":
        raise UserError(f"{path}: no such run folder or .keras file; train one first with `bench-deblur run` "
                        "(or `bench-deblur train MODEL --out FOLDER`)")
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise UserError(f"{path}: no model.keras in this folder; expected a finished run folder "
                            "(rerun `bench-deblur run` to finish it) or a .keras file")
        path = path / "model.keras"
    if not path.is_file():
        raise UserError(f"{path}: no such model file; expected a .keras file or a results run folder with model.keras")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a loadable .keras model; not a readable .keras file (truncated, or not a Keras archive)")
    _load_all()
    try:  # for inference: the training loss (e.g. train.psnr_loss) need not be importable here
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad archive; all mean the same to a user.
        why = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UserError(f"{path}: not a loadable .keras model; not a readable .keras file ({why})") from None
    from baselines.base import DeblurNet

    if not isinstance(model, DeblurNet):
        raise UserError(
            f"{path}: not a bench-deblur model (a {type(model).__name__}); expected a model trained by "
            "`bench-deblur train` or `bench-deblur run`"
        )
    return model
