"""Which module may import which: models apart from the harness, plain configs, a report that only reads results.

Read from the source with ``ast`` (nothing is imported), so a wrong import fails here, by file
and line, before it makes a cycle or drags Keras into a light command.
"""

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "bench_deblur"


def imports(path: Path, module_level: bool = False) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in ``path``; ``from a import b`` gives ``a.b``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if module_level else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", sorted((REPO / "baselines").glob("*.py")), ids=lambda p: p.name)
def test_a_baseline_imports_only_keras_the_registry_and_other_baselines(path):
    """Models depend on Keras and the registry, never on the harness (streaming, the compiled step, runtime)."""
    allowed = ("keras", "baselines", "bench_deblur.registry", "__future__")
    bad = [f"{rel(path)}:{line}: {module}" for line, module in imports(path)
           if not within(module, allowed) and module.split(".")[0] not in sys.stdlib_module_names]
    assert not bad, "baselines/ imports only keras, the standard library, bench_deblur.registry and baselines/:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted((PACKAGE / "report").glob("*.py")), ids=lambda p: p.name)
def test_the_report_never_imports_what_builds_runs_or_times_a_model(path):
    """The report rebuilds from results alone, so it imports no part of the harness that runs a model."""
    harness = [f"bench_deblur.{name}" for name in ("runtime", "streaming", "cost", "train", "evaluate", "runner", "sweep",
                                                    "registry", "speed", "video")]
    bad = [f"{rel(path)}:{line}: {module}" for line, module in imports(path) if within(module, harness)]
    assert not bad, "the report imports the harness:\n" + "\n".join(bad)


def test_config_is_plain_data():
    """config.py declares the configs (SynthConfig too); it imports no synthesis code and loads no model at import."""
    path = PACKAGE / "config.py"
    assert not [m for _, m in imports(path) if within(m, ["bench_deblur.synth"])]
    top = [m for _, m in imports(path, module_level=True) if m.startswith("bench_deblur")]
    assert top == ["bench_deblur.errors.UserError"]
    synth = [f"{rel(p)}:{line}" for p in (PACKAGE / "synth").glob("*.py") for line, m in imports(p)
             if m == "bench_deblur.config.SynthConfig"]
    assert synth, "the synthesiser takes its config from bench_deblur.config"


def test_the_machine_is_described_in_provenance_alone():
    """Versions, platform and device are gathered in provenance.py, so every record describes a machine alike."""
    bad = [f"{rel(p)}:{line}" for p in PACKAGE.rglob("*.py") if p.name != "provenance.py"
           for line, m in imports(p) if m == "platform" or m.startswith("importlib.metadata.version")]
    assert not bad, "gathered outside bench_deblur/provenance.py:\n" + "\n".join(bad)
