"""The report: tables, figures, REPORT.md and a self-contained report.html, from results on disk only.

The report never runs a model (and never imports keras): it reads only the
``results/<preset>/<run_id>/`` files the harness writes (config.json,
metrics.json, history.csv, samples.npz, provenance.json), so it can be rebuilt
anywhere, any time, in seconds. Two builds from the same results are
byte-identical. Broken runs are named in a warning and left out; the rest of the
report is still built.

Its modules follow the report's parts:

- ``load``: reading run folders into ``Run`` records (runs of the current metrics schema);
- ``stats``: confidence intervals over seeds and paired differences between models;
- ``tables``: what each table shows; Markdown, HTML and LaTeX (booktabs) rendering;
- ``claims``: the paper's claims (declared in paper_results.json), each checked with a paired CI;
- ``temporal``: per-frame diagnostics: frame classes, control test sets, the state ablation, the blend weight vs blur;
- ``figures``: every figure, one colour per model throughout;
- ``document``: REPORT.md / report.html rendering and deterministic file writing;
- ``build``: the sections in reading order, the generated findings, ``build_report``.
"""

from bench_deblur.report.build import PAPER_RESULTS, build_report
from bench_deblur.report.load import Run, load_runs
from bench_deblur.report.stats import ci95, paired_ci95

__all__ = ["PAPER_RESULTS", "Run", "build_report", "ci95", "load_runs", "paired_ci95"]
