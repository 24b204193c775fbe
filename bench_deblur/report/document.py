"""Writing the document: REPORT.md and a self-contained report.html from the same blocks, and every output file.

Outputs are deterministic so that two builds from the same results are
byte-identical and a diff of a report shows only changed results: rows and keys
are sorted, numbers have fixed formats, PNGs are written without the
``Software`` tag (no version), SVGs without a date and with a fixed hash salt
(``figures.RC``), and nothing records the time of the build.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from bench_deblur import fileio
from bench_deblur.report.figures import DPI
from bench_deblur.report.tables import Table

TABLE_FORMATS = ("md", "csv", "tex")
MANIFEST = ".report-files.json"
"""In a report folder: every file the report builds wrote there. Only files listed in it are ever removed."""


@dataclass
class Doc:
    """The report as blocks, rendered to Markdown and to HTML from the same content."""

    blocks: list[tuple] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def table(self, t: Table) -> None:
        self.blocks.append(("table", t))

    def fig(self, name: str, caption: str) -> None:
        self.blocks.append(("fig", name, caption))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {item}" for item in b[1]))
            elif b[0] == "pre":
                out.append(f"```\n{b[1]}\n```")
            elif b[0] == "table":
                t = b[1]
                note = f" {t.note}" if t.note else ""
                files = ", ".join(f"tables/{t.name}.{ext}" for ext in TABLE_FORMATS)
                out.append(f"**{t.title}**\n\n{t.markdown()}\n\n_Files: {files}.{note}_")
            else:
                out.append(f"![{b[2]}](figures/{b[1]}.png)\n\n_{b[2]} (also figures/{b[1]}.svg)_")
        return "\n\n".join(out) + "\n"

    def html(self, figures: Path, title: str) -> str:
        e = html.escape
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in b[1]) + "</ul>")
            elif b[0] == "pre":
                out.append(f"<pre>{e(b[1])}</pre>")
            elif b[0] == "table":
                t = b[1]
                out.append(
                    f"<p><b>{e(t.title)}</b></p>" + t.html() + (f"<p class='note'>{e(t.note)}</p>" if t.note else "")
                )
            else:
                data = base64.b64encode((figures / f"{b[1]}.png").read_bytes()).decode("ascii")
                out.append(
                    f"<figure><img alt='{e(b[2])}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{e(b[2])}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}table{border-collapse:collapse;"
            "font-size:0.85em}td,th{border:1px solid #ccc;padding:2px 6px}td.rule{border-top:2px solid #555}"
            "img{max-width:100%}.note,figcaption{color:#555;font-size:0.85em}"
            "pre{background:#f4f4f4;padding:0.5em;overflow:auto}"
        )
        return (
            f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
        )


class Writer:
    """Writes every output atomically and records it in ``MANIFEST``, so stale files from older builds can be removed.

    A file is listed in the manifest before it is first written, so a build killed half-way leaves no file
    that the next build does not know as its own; files the report did not write (the user's) are never removed.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out = out_dir
        self.written: set[Path] = set()
        self.listed: set[str] = self._earlier()

    def _earlier(self) -> set[str]:
        """The files an earlier build recorded (relative paths inside the folder); none without a valid manifest."""
        try:
            files = json.loads((self.out / MANIFEST).read_text()).get("files")
        except (OSError, ValueError, AttributeError):
            return set()
        if not isinstance(files, list):
            return set()
        return {f for f in files if isinstance(f, str) and f and not Path(f).is_absolute() and ".." not in Path(f).parts}

    def _claim(self, path: Path) -> None:
        rel = path.relative_to(self.out).as_posix()
        if rel not in self.listed:
            self.listed.add(rel)
            self._record(self.listed)
        self.written.add(path)

    def _record(self, files: set[str]) -> None:
        fileio.write_json(self.out / MANIFEST, {"written_by": "bench-deblur report", "files": sorted(files)})

    def text(self, rel: str, text: str) -> None:
        self._claim(self.out / rel)
        fileio.write_text(self.out / rel, text)

    def table(self, t: Table) -> None:
        note = f"\n{t.note}\n" if t.note else ""
        self.text(f"tables/{t.name}.md", f"# {t.title}\n\n{t.markdown()}\n{note}")
        self.text(f"tables/{t.name}.csv", t.data.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
        self.text(f"tables/{t.name}.tex", t.latex())

    def figure(self, name: str, fig: Figure) -> None:
        for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None})):
            path = self.out / "figures" / f"{name}.{fmt}"
            self._claim(path)
            with fileio.atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, metadata=meta, bbox_inches="tight", dpi=DPI)

    def remove_stale(self) -> None:
        """Remove the files an earlier build wrote and this one did not; then list exactly this build's files."""
        current = {path.relative_to(self.out).as_posix() for path in self.written}
        for rel in sorted(self.listed - current):
            path = self.out / rel
            if path.is_file() and not path.is_symlink():
                path.unlink()
        self.listed = current
        self._record(current)
