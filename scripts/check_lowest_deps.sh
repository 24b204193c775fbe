#!/usr/bin/env bash
# Check that the lower bounds in pyproject.toml hold: install bench-deblur into a fresh virtual
# environment with every direct dependency at its lowest allowed version, then run a fast test subset.
#
#   scripts/check_lowest_deps.sh [VENV_DIR]     (default: a new temporary folder; PYTHON=python3.11 to pick one)
#
# With uv on PATH the install is uv's `--resolution lowest-direct`; without it, pip installs with each
# direct dependency pinned to its lower bound, which is the same resolution for the direct dependencies.
# Needs a package index (or PIP_FIND_LINKS / UV_FIND_LINKS wheels) that holds those old releases.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$(mktemp -d)/venv}
"${PYTHON:-python3}" -m venv "$venv"
py=$venv/bin/python

# "name>=X; marker" -> "name==X; marker" for every runtime dependency, plus the test extra's pytest and
# pytest-xdist bounds (pyproject's pytest addopts run the tests in worker processes).
"$py" - "$root/pyproject.toml" >"$venv/lowest.txt" <<'EOF'
import re, sys, tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
pytest = [d for d in project["optional-dependencies"]["test"] if re.match(r"pytest\b", d)]
for dep in project["dependencies"] + pytest:
    print(dep.replace(">=", "==", 1))
EOF

mapfile -t pytest_req < <(grep '^pytest' "$venv/lowest.txt" | sed 's/==/>=/')
if command -v uv >/dev/null; then
    uv pip install --python "$py" --resolution lowest-direct -e "$root" "${pytest_req[@]}"
else
    "$py" -m pip install -c "$venv/lowest.txt" -e "$root" "${pytest_req[@]}"
fi
"$py" -m pip list --format=freeze | grep -i -E '^(keras|tensorflow(-cpu)?|numpy|pandas|jinja2|tabulate|matplotlib|scikit-image|pillow|imageio|imageio-ffmpeg|tqdm|pytest|pytest-xdist)=='

# The fast tests that touch every direct dependency (no jax, ray or torch: those are extras). Deselected:
# matplotlib before 3.10.x warns about pyparsing >= 3.3's renamed methods, and that test fails on any warning.
cd "$root"
"$py" -m pytest -q -p no:cacheprovider -m "not slow" \
    --deselect tests/test_report_stats.py::test_old_results_still_load \
    tests/test_metrics.py tests/test_datasets.py tests/test_deblur.py tests/test_video_edges.py \
    tests/test_report_stats.py tests/test_report.py tests/test_synth.py
