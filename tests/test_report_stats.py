"""The report's statistics, findings, tables and colours, on fabricated results (see test_report.py)."""

import json
import math

import pandas as pd
import pytest
from matplotlib.colors import to_hex
from scipy import stats
from test_report import fabricate

from bench_deblur.report import build_report, document, paired_ci95
from bench_deblur.report.figures import GREY, Palette
from bench_deblur.report.load import load_runs
from bench_deblur.report.tables import BLURRY, Table, diff_text, latex_escape


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A report built from fabricated results, and every figure object it drew."""
    root = tmp_path_factory.mktemp("stats")
    results = fabricate(root)
    drawn = {}
    original = document.Writer.figure

    def capture(self, name, fig):
        drawn[name] = fig
        original(self, name, fig)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(document.Writer, "figure", capture)
        report = build_report(results, root / "out", progress=False)
    return results, root / "out", report, drawn


def test_paired_ci_one_seed_is_the_paired_t_over_sequences():
    res = paired_ci95([[0.1, 0.3, 0.2, 0.4]])
    sd = math.sqrt((0.15**2 + 0.05**2 + 0.05**2 + 0.15**2) / 3)
    assert res.mean == pytest.approx(0.25)
    assert res.half == pytest.approx(3.182446 * sd / 2, rel=1e-6)  # t(0.975, 3) * sd / sqrt(4)
    assert (res.dof, res.pairs, res.seeds, res.sequences) == (3, 4, 1, 4)
    assert res.excludes_zero


def test_paired_ci_seeds_and_sequences_by_hand():
    # rows = seeds, columns = sequences; seed means 2, 4 (variance 2), sequence means 1.5, 2.5, 5 (variance 3.25)
    res = paired_ci95([[1.0, 2.0, 3.0], [2.0, 3.0, 7.0]])
    var = 2 / 2 + 3.25 / 3  # s^2(seed means) / S + s^2(sequence means) / U
    dof = var**2 / ((2 / 2) ** 2 / 1 + (3.25 / 3) ** 2 / 2)  # Welch-Satterthwaite
    assert res.mean == pytest.approx(3.0)
    assert res.dof == pytest.approx(dof) and dof == pytest.approx(2.73523, rel=1e-5)
    assert res.half == pytest.approx(stats.t.ppf(0.975, dof) * math.sqrt(var))
    assert res.pairs == 6 and res.low < 0 < res.high and not res.excludes_zero


def test_paired_ci_degenerate_cases():
    single = paired_ci95([[0.5]])
    assert single.mean == 0.5 and math.isnan(single.half) and not single.excludes_zero
    same = paired_ci95([[0.2, 0.2], [0.2, 0.2]])
    assert same.half == 0 and same.excludes_zero
    with pytest.raises(ValueError):
        paired_ci95([])


def test_small_differences_get_the_digits_to_show_their_sign():
    assert diff_text(0.21, 0.12, 0.30, 2, " dB") == "+0.21 dB [0.12, 0.30]"
    assert diff_text(0.003, 0.0012, 0.0049, 2, " dB") == "+0.003 dB [0.001, 0.005]"
    assert diff_text(-0.0004, -0.0007, -0.0001, 2) == "-0.0004 [-0.0007, -0.0001]"
    assert diff_text(0.5, math.nan, math.nan, 2) == "+0.50 (no CI)"


def test_paired_table_matches_a_hand_computation(built):
    _, out, _, _ = built
    data = pd.read_csv(out / "tables" / "main_paired.csv")
    row = data[(data["a"] == "strcnn_dtb (m=1)") & (data["b"] == "cnn (m=1)") & (data["metric"] == "psnr")].iloc[0]
    # fabricated: d = 1 + offset * (1 + 0.5 seed) * 0.4 with offset -0.1 / +0.1 per scene, 3 taus, 3 seeds;
    # every seed mean is 1 (no seed term); sequence means are 1 -/+ 0.06, three of each: s^2 = 6 * 0.0036 / 5.
    se = math.sqrt(6 * 0.06**2 / 5 / 6)
    assert row["mean"] == pytest.approx(1.0)
    assert row["ci_low"] == pytest.approx(1.0 - 2.570582 * se, rel=1e-5)  # t(0.975, 5)
    assert (row["seeds"], row["sequences"], row["pairs"], row["dof"]) == (3, 6, 18, 5)
    assert bool(row["ci_excludes_0"])
    blurry = data[(data["a"] == "cnn (m=1)") & (data["b"] == "blurry_input") & (data["metric"] == "psnr")]
    assert blurry["mean"].item() == pytest.approx(27.2 - 0.5 - 23.5)  # cnn mean over seeds and taus - blurry
    md = (out / "tables" / "main_paired.md").read_text()
    assert "| strcnn_dtb (m=1) - cnn (m=1)" in md and "**+1.00 dB [0.93, 1.07]**" in md


def test_findings_are_generated_at_the_top(built):
    _, _, report, _ = built
    md = report.read_text()
    head = md[: md.index("## Statistics")]
    assert "## Findings" in head
    line = "strcnn_dtb (m=1) - cnn (m=1): +1.00 dB [0.93, 1.07], 18 sequence x seed pairs (3 seeds x 6 sequences"
    assert f"{line} of 2 scenes); the CI excludes 0" in head
    assert "cnn (m=1) - blurry input (identity floor): +3.20 dB" in head
    assert "Highest mean PSNR in group 'main': strcnn_dtb (m=1), 27.70 dB" in head
    assert "mid-encoder - none (STRCNN, no DTB): +0.60 dB" in head
    assert "Welch-Satterthwaite" in md  # the method is stated


def test_per_sequence_and_latex_tables(built):
    _, out, report, _ = built
    per_seq = pd.read_csv(out / "tables" / "main_per_sequence.csv")
    cnn = per_seq[(per_seq["label"] == "cnn (m=1)") & (per_seq["tau"] == 7) & (per_seq["sequence"] == "seq0")]
    assert cnn["psnr"].item() == pytest.approx(27.2 - 0.1 * 1.2 * 1.5)  # mean over seeds of 27 + 0.2 s - 0.1 * spread
    md = (out / "tables" / "main_per_sequence.md").read_text()
    assert "| 7   | seq0       | **27.96**" in md
    for md_file in sorted((out / "tables").glob("*.md")):
        tex = md_file.with_suffix(".tex").read_text()
        assert "\\toprule" in tex and "\\bottomrule" in tex and "\\begin{tabular}" in tex, md_file.name
        assert f"tables/{md_file.stem}.tex" in report.read_text()
    tex = (out / "tables" / "main_psnr.tex").read_text()
    assert "strcnn\\_dtb (m=1) & \\textbf{28.20 $\\pm$ 0.50}" in tex
    assert "\\midrule blurry input (identity floor) & 24.00 & 23.50" in tex  # the floor row, after a rule
    assert latex_escape("a_b & 5% ± τ") == "a\\_b \\& 5\\% $\\pm$ $\\tau$"


def test_styler_tables_keep_bold_rule_and_escapes():
    """HTML and LaTeX come from pandas' Styler: same cells, bold and rule as the table says, and no random ids."""
    display = pd.DataFrame({"model": ["a_b <x>", BLURRY], "τ=7": ["1.00 ± 0.10", "2.00"], "mean": [3, "—"]})
    table = Table("t", "PSNR & τ", display, display, "a note", frozenset({(0, "mean"), (1, "τ=7")}), (1,))
    tex = table.latex()
    assert tex == table.latex() and table.html() == table.html()
    assert "\\caption{PSNR \\& $\\tau$}\n\\label{tab:t}\n\\begin{tabular}{lrr}" in tex
    assert "model & $\\tau$=7 & mean \\\\\n\\midrule\na\\_b <x> & 1.00 $\\pm$ 0.10 & \\textbf{3} \\\\\n" in tex
    assert f"\\midrule {BLURRY} & \\textbf{{2.00}} & --- \\\\\n\\bottomrule" in tex
    page = table.html()
    assert '<table id="T_t">' in page and "#T_t_row0_col2, #T_t_row1_col1 {\n  font-weight: bold;\n}" in page
    assert '<td class="data row0 col0" >a_b &lt;x&gt;</td>' in page
    assert f'<td class="data row1 col0 rule" >{BLURRY}</td>' in page


def test_one_colour_per_model_in_every_figure(built):
    results, _, _, drawn = built
    runs, _ = load_runs(results, progress=False)
    palette = Palette.of(runs)
    assert palette.colors["identity"] == GREY and len(set(palette.colors.values())) == len(palette.colors)
    seen: dict[str, dict[str, set]] = {}
    for name, fig in drawn.items():
        for artist in fig.findobj(lambda a: str(a.get_gid() or "").startswith("model:")):
            model = artist.get_gid().split(":")[1]
            if hasattr(artist, "get_facecolor") and not hasattr(artist, "get_linestyle_sequence"):
                color = artist.get_facecolor()
            else:
                color = artist.get_color()
            if hasattr(color, "ndim") and color.ndim == 2:
                color = color[0]
            seen.setdefault(model, {}).setdefault(to_hex(color, keep_alpha=False), set()).add(name)
    for model, colors in seen.items():
        assert list(colors) == [palette.colors[model]], (model, colors)
    figures_with = {m: set().union(*c.values()) for m, c in seen.items()}
    assert figures_with["strcnn_dtb"] >= {
        "psnr_vs_tau",
        "psnr_vs_frame",
        "psnr_vs_runtime",
        "training_curves",
        "qualitative",
        "blend_weight",
        "psnr_vs_inputs",
        "placement",
    }
    assert {"psnr_vs_tau", "psnr_vs_frame"} <= figures_with["identity"]  # the blurry input, in grey


def test_single_seed_series_are_plain_points(built):
    _, _, _, drawn = built
    labels = [t.get_text() for ax in drawn["psnr_vs_inputs"].axes for t in ax.get_legend().get_texts()]
    assert labels == ["cnn (1 seed)", "strcnn (1 seed)", "strcnn_dtb (1 seed)"]
    placement = drawn["placement"].axes[0]
    assert [t.get_text() for t in placement.get_xticklabels()] == [
        "none (STRCNN, no DTB)",
        "mid-encoder",
        "after encoder (paper)",
    ]
    assert [t.get_text() for t in placement.texts] == ["1 seed"] * 3
    assert not placement.collections  # no error bars from one seed
    legend = [t.get_text() for t in drawn["psnr_vs_tau"].axes[0].get_legend().get_texts()]
    assert "strcnn_dtb (m=1) (3 seeds)" in legend and "blurry input (identity floor)" in legend


def test_pngs_are_at_least_150_dpi(built):
    _, out, _, _ = built
    from PIL import Image

    with Image.open(out / "figures" / "psnr_vs_tau.png") as im:
        assert im.info["dpi"][0] == pytest.approx(150, abs=1) and im.width >= 1500


def test_runs_of_another_results_schema_are_left_out(tmp_path):
    """Runs without ``schema`` are schema 1; another schema, or schema 1 lacking a key it always has, is left out."""
    results = fabricate(tmp_path, groups=("main",))
    newer, older = results / "cnn-m1-s0" / "metrics.json", results / "strcnn-m1-s0" / "metrics.json"
    newer.write_text(json.dumps(json.loads(newer.read_text()) | {"schema": 2}))
    data = json.loads(older.read_text())
    for scores in data["per_tau"].values():  # as written before per-sequence blurry scores existed
        del scores["blurry_sequences"]
    older.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="left out of the report"):
        md = build_report(results, tmp_path / "out", progress=False).read_text()
    assert f"{newer}: results schema 2, this version reads schema 1; run left out of the report" in md
    assert f"{older}: missing key 'blurry_sequences'; run left out of the report" in md
    assert "Built from 10 complete run(s)" in md


def test_a_negative_psnr_loss_is_drawn_on_a_linear_axis():
    from bench_deblur.report.figures import training_curves

    history = pd.DataFrame({"epoch": [0, 1, 2], "loss": [-24.1, -24.6, -24.9], "val_psnr": [25.0, 25.3, 25.4]})
    pal = Palette({"cnn": "#1f77b4"}, {"cnn (m=1)": "cnn"})
    fig = training_curves({"cnn (m=1)": [history]}, ["cnn (m=1)"], pal, ["psnr"])
    loss_axis = fig.axes[0]
    assert loss_axis.get_yscale() == "linear" and "10·log10 MSE" in loss_axis.get_ylabel()
    low, high = loss_axis.get_ylim()
    assert low <= -24.9 and high >= -24.1  # the curve is inside the axis, not clipped away
    mse = training_curves({"cnn (m=1)": [history.assign(loss=[0.01, 0.005, 0.004])]}, ["cnn (m=1)"], pal, ["mse"])
    assert mse.axes[0].get_yscale() == "log"
