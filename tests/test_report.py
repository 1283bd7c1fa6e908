"""by_step.parquet, the per-step trace kernel, and `simulator report`."""

import base64
import datetime as dt
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from simulator import kernel, model, reference
from simulator import report as report_module
from simulator.api import run
from simulator.built_model import Model
from simulator.cli import main
from simulator.config import load_config, validate
from simulator.engine import TRACE_PATHS, trace_steps
from simulator.report_files import REPORT_CHARTS, REPORT_FILE, report_files_of
from simulator.summary import headline_metrics

N = 3000


@pytest.mark.parametrize("spy", [1, 4, 12])
def test_trace_block_matches_reference_trace(base_raw, spy):
    """trace_block's per-step values equal the plain-Python reference's trace, and its other outputs
    equal simulate_block's (the trace changes nothing)."""
    base_raw["simulation"]["steps_per_year"] = spy
    base_raw["funding"]["min_cash"] = 50.0  # shortfalls, raises and credit on some paths
    cfg = validate(base_raw)
    inputs = model.build_inputs(cfg)
    n, first, T = 6, 500, inputs.n_years * spy
    outs = [(np.empty((n, inputs.chol_param.shape[0])), np.empty((n, len(kernel.ANNUAL_VARS), inputs.n_years)),
             np.empty((n, len(kernel.SCALAR_VARS)))) for _ in range(2)]
    steps = np.empty((n, T, len(kernel.STEP_VARS)))
    kernel.simulate_block(np.uint64(7), first, inputs, *outs[0])
    kernel.trace_block(np.uint64(7), first, inputs, *outs[1], steps)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    dt_ = 1.0 / spy
    for i in range(n):
        trace = reference.simulate_path(inputs, 7, first + i)["trace"]
        expected = np.array([[s["revenue"] / dt_, 1 - s["cogs"] / s["revenue"], s["fcf"] / dt_, s["cash"]]
                             for s in trace])
        np.testing.assert_allclose(steps[i], expected, rtol=1e-10, atol=1e-9)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "base"
    cfg = load_config(None, [])
    run(cfg, N, out=out)
    return cfg, out


def test_by_step_parquet(small_run):
    cfg, out = small_run
    table = pq.read_table(out / "by_step.parquet")
    assert table.column_names == ["step", "date", "variable", "mean", "q05", "q25", "q50", "q75", "q95", "paths"]
    assert str(table.schema.field("date").type) == "date32[day]"
    frame = table.to_pandas()
    spy = cfg.simulation.steps_per_year
    T = len(cfg.years) * spy
    assert len(frame) == T * 4
    assert list(frame["variable"][:4]) == ["revenue", "gross_margin", "fcf", "cash"]
    assert (frame["paths"] == min(N, TRACE_PATHS)).all()
    assert frame["date"].iloc[0] == dt.date(cfg.simulation.start_year, 3, 31)
    assert frame["date"].iloc[-1] == dt.date(cfg.simulation.end_year, 12, 31)
    q = frame[["q05", "q25", "q50", "q75", "q95"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    # The last step's cash is the year-end cash of by_year, over the same paths.
    paths = pd.read_parquet(out / "paths")  # the dataset, as a reader of the files would
    end = cfg.simulation.end_year
    last_cash = frame[(frame["step"] == T - 1) & (frame["variable"] == "cash")].iloc[0]
    assert last_cash["q50"] == pytest.approx(np.quantile(paths[f"cash_{end}"], 0.5), rel=1e-12)
    # Annualised steps: the mean over the year of revenue / dt-per-step is the annual revenue.
    steps = trace_steps(Model.of(cfg), N, cfg.simulation.seed)
    np.testing.assert_allclose(steps[:, -spy:, kernel.T_REV].mean(axis=1), paths[f"revenue_{end}"], rtol=1e-10)


def test_report(small_run, tmp_path):
    from matplotlib.image import imread

    from simulator.analysis import sensitivity, write_sensitivity
    from simulator.report import DPI, FIGSIZE, make_report
    from simulator.results import read_results

    cfg, out = small_run
    res = read_results(out)
    write_sensitivity(out, sensitivity(res, out), res.metadata)
    report = make_report(out, tmp_path / "rep")
    names = {f.name for f in report.figures}
    assert names == set(REPORT_CHARTS)  # the names a new run in the folder removes
    page = report.html.read_text()
    for f in report.figures:
        image = imread(f.path)
        assert image.shape[:2] == f.pixels[::-1], f.name
        assert f.name == "tornado.png" or f.pixels == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)), f.name
        assert f"width='{f.pixels[0]}' height='{f.pixels[1]}'" in page
        assert base64.b64encode(f.path.read_bytes()).decode() in page, f.name
        assert f.caption and len(f.caption.splitlines()) == 1
    assert page.count("<img src='data:image/png;base64,") == len(report.figures)
    assert not re.search(r"<img src='(?!data:)", page)  # self-contained: no external image
    assert 'id="headline"' in page
    for metric in headline_metrics(cfg):
        assert f"<code>{metric}</code>" in page
    assert res.metadata["config_hash"][:16] in page and str(res.metadata["seed"]) in page
    # The fan charts draw by_step.parquet's quantiles.
    by_step = pd.read_parquet(out / "by_step.parquet")
    for var in ("revenue", "gross_margin", "fcf", "cash"):
        drawn = report.series[f"fan_{var}"]
        stored = by_step[by_step["variable"] == var].sort_values("step")
        for q in ("q05", "q25", "q50", "q75", "q95"):
            np.testing.assert_array_equal(drawn[q].to_numpy(), stored[q].to_numpy())
    # The survival curve is 1 - P(shortfall by year).
    summary = res.summary.set_index("metric")
    np.testing.assert_allclose(report.series["survival"]["survival"],
                               [1 - summary.loc[f"p_shortfall_by_{y}", "value"] for y in cfg.years])


def test_report_without_paths_or_sensitivity(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "-n", "2000", "-q", "-o", str(out), "--keep-paths", "none", "--report"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").exists() and (out / "fan_cash.png").exists()
    assert not (out / "tornado.png").exists()
    result = CliRunner().invoke(main, ["report", str(out)])  # replaces its own page and charts
    assert result.exit_code == 0, result.output
    assert "7 charts" in result.output
    # `simulator sensitivity` needs per-path rows: the report says so rather than suggest it.
    assert f"run `simulator sensitivity {out}`" not in result.output
    assert "which this run did not keep; run the config again with --keep-paths sample:100000" in result.output
    assert not (out / "tornado.png").exists()
    result = CliRunner().invoke(main, ["report", str(out), "--format", "svg"])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.svg"))) == 7 and len(report_files_of(out)) == 1 + 7 + 7
    # A new run in the folder removes the old run's page and charts (they would describe another run).
    result = CliRunner().invoke(main, ["run", "-n", "1000", "-q", "-o", str(out), "--keep-paths", "none", "--force"])
    assert result.exit_code == 0, result.output
    assert not (out / "report.html").exists() and (out / "by_step.parquet").exists()
    assert not list(out.glob("*.png")) and not list(out.glob("*.svg"))


def test_report_errors(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "no such results folder" in result.output


def test_library_does_not_import_matplotlib():
    code = "import sys, simulator, simulator.cli, simulator.api; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def bare_run(tmp_path_factory):
    """A run without per-path rows or sensitivity.parquet: its report has no tornado chart."""
    out = tmp_path_factory.mktemp("report") / "bare"
    run(load_config(None, []), 1000, out=out, keep_paths="none")
    return out


def with_sensitivity(folder):
    from simulator.analysis import sensitivity, write_sensitivity
    from simulator.results import read_results

    res = read_results(folder)
    write_sensitivity(folder, sensitivity(res, folder), res.metadata)


def invoke_one_line_error(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    return result.output


@pytest.mark.parametrize("name, content", [("tornado.png", b"my own chart"), ("fan_cash.png", b"\x89PNG\r\n\x1a\n"),
                                           ("report.html", b"<html><head><title>my page</title></head></html>")])
def test_report_refuses_to_replace_a_file_it_did_not_write(small_run, tmp_path, name, content):
    """A file with a report's name that no report of ours wrote stops the report, before it writes anything."""
    _, out = small_run
    with_sensitivity(out)  # so that the report would write tornado.png
    dest = tmp_path / "rep"
    dest.mkdir()
    (dest / name).write_bytes(content)
    (dest / "notes.txt").write_text("mine")
    message = invoke_one_line_error(["report", str(out), "-o", str(dest)])
    assert f"{dest / name}: not written by simulator report" in message
    assert sorted(p.name for p in dest.iterdir()) == sorted([name, "notes.txt"])  # nothing written
    assert (dest / name).read_bytes() == content
    assert report_files_of(dest) == []


def test_report_replaces_only_what_a_report_of_ours_wrote(small_run, bare_run, tmp_path):
    _, out = small_run
    with_sensitivity(out)
    dest = tmp_path / "rep"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    assert report_files_of(dest) == []
    assert CliRunner().invoke(main, ["report", str(out), "-o", str(dest)]).exit_code == 0
    assert report_files_of(dest) == [REPORT_FILE, *REPORT_CHARTS]
    before = (dest / "fan_cash.png").read_bytes()
    # Another run's report in the same folder replaces the earlier one, and removes its tornado chart,
    # which the new page would not show.
    result = CliRunner().invoke(main, ["report", str(bare_run), "-o", str(dest)])
    assert result.exit_code == 0, result.output
    assert "7 charts" in result.output
    assert report_files_of(dest) == [REPORT_FILE, *(c for c in REPORT_CHARTS if c != "tornado.png")]
    assert not (dest / "tornado.png").exists() and (dest / "fan_cash.png").read_bytes() != before
    assert (dest / "notes.txt").read_text() == "mine"
    # A tornado.png of someone else's is neither removed nor reported as ours.
    (dest / "tornado.png").write_bytes(b"my own chart")
    assert CliRunner().invoke(main, ["report", str(bare_run), "-o", str(dest)]).exit_code == 0
    assert (dest / "tornado.png").read_bytes() == b"my own chart"
    assert "tornado.png" not in report_files_of(dest)
    # A chart copied under a name no report writes is never one of them, whatever it carries.
    shutil.copy(dest / "fan_cash.png", dest / "old_fan.png")
    assert "old_fan.png" not in report_files_of(dest)
    assert report_files_of(tmp_path / "nowhere") == []


def test_report_into_a_file_is_one_line(small_run, tmp_path):
    _, out = small_run
    target = tmp_path / "a-file"
    target.write_text("mine")
    message = invoke_one_line_error(["report", str(out), "-o", str(target)])
    assert f"{target}: exists and is not a folder" in message and target.read_text() == "mine"


HOSTILE = "<img src=x onerror=alert(1)><script>alert('x')</script>\"'&<b onmouseover=alert(2)>"
TEMPLATE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "tr", "th", "td", "code",
                 "figure", "img", "figcaption"}


def parsed(page: str):
    from html.parser import HTMLParser

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.text = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, attrs))

        def handle_data(self, data):
            self.text.append(data)

    p = Collect()
    p.feed(page)
    return p.tags, "".join(p.text)


def test_report_escapes_every_string_from_a_config_or_a_file(small_run, tmp_path, monkeypatch):
    """Hostile text in the config's strings, the manifest's and the folder's path, and in the parameter names of
    sensitivity.parquet, shows as text: no tag or event attribute of its own reaches report.html."""
    cfg, out = small_run
    # Config strings the name validator may refuse are set after validation, as a forged manifest could.
    hostile_cfg = cfg.model_copy(update={"name": HOSTILE, "description": HOSTILE})
    monkeypatch.setattr(report_module, "validate", lambda raw, source: hostile_cfg)
    # A forged run whose files agree with its hostile manifest: the readers' cross-checks of manifest and files
    # (tests/test_run_folder.py) are switched off, so that every string reaches the page.
    from simulator import results as results_module

    monkeypatch.setattr(results_module, "_check_manifest", lambda where, manifest: None)
    monkeypatch.setattr(results_module, "_of_run", lambda path, metadata, manifest, keys: None)
    folder = tmp_path / "<img src=x onerror=alert(3)>'\"&"
    shutil.copytree(out, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    meta = manifest["metadata"]
    meta.update(config_name=HOSTILE, reproduce=HOSTILE, quantiles=HOSTILE, simulator_version=HOSTILE, seed=HOSTILE)
    meta["config"]["name"] = meta["config"]["description"] = HOSTILE
    meta["runtime"]["created_utc"] = HOSTILE
    (folder / "manifest.json").write_text(json.dumps(manifest))
    from simulator.analysis import sensitivity, write_sensitivity
    from simulator.results import read_results

    res = read_results(folder)
    result = sensitivity(read_results(out), out)  # analysis validates the config, whose name is now hostile
    result.table["parameter"] = [f"{HOSTILE} ${i}$ {p}" for i, p in enumerate(result.table["parameter"])]
    write_sensitivity(folder, result, res.metadata)
    pages = [report_module.make_report(folder, tmp_path / "with-tornado")]
    (folder / "sensitivity.parquet").unlink()  # the page's note then names the folder
    pages.append(report_module.make_report(folder, tmp_path / "with-note"))
    for rep in pages:
        page = rep.html.read_text()
        tags, text = parsed(page)
        assert {t for t, _ in tags} <= TEMPLATE_TAGS
        assert not [(t, a) for t, attrs in tags for a, _ in attrs if a.lower().startswith("on")]
        images = [dict(attrs)["src"] for t, attrs in tags if t == "img"]
        assert len(images) == len(rep.figures) and all(s.startswith("data:image/png;base64,") for s in images)
        assert "<script" not in page.lower()
        assert text.count(HOSTILE) >= 5  # config name (title, heading, table), reproduce, quantiles, ...
        assert str(folder) in text
    assert any(f.name == "tornado.png" for f in pages[0].figures)  # drawn with the hostile parameter names
    assert any(str(folder) in note for note in pages[1].notes)


# ---------------------------------------------------------------- what each chart shows (issue 33)


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures the report saves, by file name, kept open after they are written."""
    figures = {}
    save = report_module._save

    def keep(plt, fig, path, formats=("png",)):
        save(plt, fig, path, formats)
        figures[path.name] = fig

    monkeypatch.setattr(report_module, "_save", keep)
    return figures


def test_charts_label_every_axis_tick_every_year_and_survival_starts_at_zero(small_run, tmp_path, drawn):
    cfg, out = small_run
    with_sensitivity(out)
    report_module.make_report(out, tmp_path / "rep")
    assert set(drawn) == set(REPORT_CHARTS)
    years = [str(y) for y in cfg.years]
    for name, fig in drawn.items():
        (ax,) = fig.axes
        assert ax.get_xlabel(), name
        assert ax.get_ylabel() or name == "tornado.png", name  # the tornado's y axis: a label on each bar
        if name.startswith("fan_") or name == "survival.png":
            assert ax.get_xlabel() == "year"
            assert [t.get_text() for t in ax.xaxis.get_minorticklabels()] == years, name
    for name in ("fan_revenue.png", "fan_fcf.png", "fan_cash.png", "fcf_histogram.png", "funding_gap.png"):
        label = drawn[name].axes[0].get_xlabel() + drawn[name].axes[0].get_ylabel()
        assert "USD bn" in label, name
    for name in ("fan_gross_margin.png", "survival.png", "fcf_histogram.png", "funding_gap.png"):
        assert "share" in drawn[name].axes[0].get_ylabel(), name
    assert drawn["survival.png"].axes[0].get_ylim()[0] == 0
    # The funding gap's legend lies beside the axes, off the bars.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = drawn["funding_gap.png"]
    renderer = FigureCanvasAgg(fig).get_renderer()
    assert fig.axes[0].get_legend().get_window_extent(renderer).x0 > fig.axes[0].get_window_extent(renderer).x1


def test_survival_drops_at_each_year_end(small_run, tmp_path, drawn):
    cfg, out = small_run
    report_module.make_report(out, tmp_path / "rep")
    ax = drawn["survival.png"].axes[0]
    line = ax.get_lines()[0]  # the step curve: 1 over the first year, then each year's value from its end
    x = [pd.Timestamp(matplotlib_date(v)).year for v in line.get_xdata()]
    assert x == [cfg.years[0], *(y + 1 for y in cfg.years)]
    summary = pd.read_parquet(out / "summary.parquet").set_index("metric")
    np.testing.assert_allclose(line.get_ydata(), [1.0, *(1 - summary.loc[f"p_shortfall_by_{y}", "value"]
                                                         for y in cfg.years)])


def matplotlib_date(value):
    import matplotlib.dates as mdates

    return mdates.num2date(value) if isinstance(value, float) else value


def test_verdict_opens_the_page_with_the_figures_and_their_intervals(small_run, tmp_path):
    from simulator.report import percent

    cfg, out = small_run
    page = report_module.make_report(out, tmp_path / "rep").html.read_text()
    body = page.split("<body>", 1)[1]
    assert re.match(r"\s*<h1>[^<]*</h1>\s*<p id=\"verdict\">", body)
    verdict = re.search(r'<p id="verdict">([^<]*)</p>', page).group(1)
    summary = pd.read_parquet(out / "summary.parquet").set_index("metric")
    end = cfg.simulation.end_year
    for metric in (f"p_fcf_positive_{end}", f"p_shortfall_by_{end}"):
        r = summary.loc[metric]
        assert f"{percent(r.value)} of the paths (95% interval {percent(r.ci_low)} to {percent(r.ci_high)})" \
            in verdict, metric
    from simulator.summary import format_number

    for metric in ("funding_gap_q95", "funding_gap_es95"):
        r = summary.loc[metric]
        assert (f"USD {format_number(r.value)} bn (95% interval {format_number(r.ci_low)} to "
                f"{format_number(r.ci_high)})") in verdict, metric
    assert f"floor of USD {cfg.funding.min_cash.value:g} bn" in verdict


def test_percent():
    from simulator.report import percent

    assert [percent(p) for p in (0.6123, 0.01, 0.0035, 0.00012, 0.0, 1.0)] == \
        ["61.2%", "1.0%", "0.35%", "0.012%", "0.0%", "100.0%"]


def test_histograms_of_a_run_that_kept_no_rows_come_from_its_stored_histograms(bare_run, tmp_path):
    rep = report_module.make_report(bare_run, tmp_path / "rep")
    stored = pd.read_parquet(bare_run / "histograms.parquet")
    summary = pd.read_parquet(bare_run / "summary.parquet").set_index("metric")
    n_paths = json.loads((bare_run / "manifest.json").read_text())["metadata"]["n_paths"]
    end = validate(json.loads((bare_run / "config.json").read_text())).simulation.end_year
    fcf = stored[stored["variable"] == f"fcf_{end}"]
    assert fcf["paths"].sum() == n_paths and len(fcf) == 80
    drawn = rep.series["fcf_histogram"]
    np.testing.assert_array_equal(drawn["left"], fcf["left"])
    np.testing.assert_array_equal(drawn["right"], fcf["right"])
    np.testing.assert_allclose(drawn["share"], fcf["paths"] / n_paths)
    # The funding gap: over the paths that fell short only, as many as P(shortfall by the end) says.
    gap = stored[stored["variable"] == "funding_gap"]
    assert gap["paths"].sum() == round(summary.loc[f"p_shortfall_by_{end}", "value"] * n_paths)
    assert (gap["left"] > 0).all()
    np.testing.assert_allclose(rep.series["funding_gap"]["share"], gap["paths"] / gap["paths"].sum())
    caption = next(f.caption for f in rep.figures if f.name == "fcf_histogram.png")
    assert "histograms.parquet" in caption


def test_kept_rows_histograms_and_the_gap_quantiles_among_the_paths_that_fell_short(small_run, tmp_path):
    cfg, out = small_run
    rep = report_module.make_report(out, tmp_path / "rep")
    paths = pd.read_parquet(out / "paths")
    end = cfg.simulation.end_year
    fcf = rep.series["fcf_histogram"]
    assert fcf["share"].sum() == pytest.approx(1.0)
    counts, _ = np.histogram(np.clip(paths[f"fcf_{end}"], fcf["left"].iloc[0], fcf["right"].iloc[-1]),
                             bins=np.r_[fcf["left"], fcf["right"].iloc[-1]])
    np.testing.assert_allclose(fcf["share"], counts / len(paths))
    short = paths["funding_gap"][paths["funding_gap"] > 0]
    gap = rep.series["funding_gap"]
    assert gap["share"].sum() == pytest.approx(1.0)
    for q, value in gap.attrs["quantiles"].items():
        assert value == pytest.approx(np.quantile(short, q))


def test_stored_histograms_from_streamed_samples_agree_with_every_value(rng):
    """histograms.parquet from a streamed histogram (runs over PILOT_PATHS) counts what the values themselves
    give, to within the fine bins' rank error."""
    from simulator.samples import Accumulator, SortedSample, bin_edges
    from simulator.summary import histogram_frame

    cfg = load_config(None, [])
    end = cfg.simulation.end_year
    n = 200_000
    fcf = rng.normal(-30, 20, n)
    gap = np.where(rng.random(n) < 0.4, 0.0, rng.lognormal(3, 1.5, n))
    values = np.stack([fcf, gap])
    acc = Accumulator([f"fcf_{end}", "funding_gap"], *bin_edges(values[:, :100_000]), [True, True])
    acc.add(values, 0)
    streamed = histogram_frame(cfg, acc.finish()).to_pandas()
    exact = histogram_frame(cfg, {f"fcf_{end}": SortedSample(fcf), "funding_gap": SortedSample(gap)}).to_pandas()
    for name, total in ((f"fcf_{end}", n), ("funding_gap", np.count_nonzero(gap))):
        a, b = streamed[streamed["variable"] == name], exact[exact["variable"] == name]
        assert a["paths"].sum() == b["paths"].sum() == total
        np.testing.assert_allclose(a["left"], b["left"], rtol=0.01, atol=0.05)  # a fine bin apart
        assert np.abs(a["paths"].to_numpy() - b["paths"].to_numpy()).max() <= 0.002 * total


def test_tornado_labels_in_words_with_the_low_and_high_values(small_run, tmp_path):
    from simulator.report import in_words

    assert in_words("revenue.consumer.growth_initial") == "Consumer revenue growth (initial)"
    assert in_words("funding.initial_cash") == "Cash at the start"
    assert in_words("compute.contracts.oracle.take_or_pay") == "Take-or-pay share, oracle contract"
    assert in_words("some.new_thing") == "New thing (some)"
    _, out = small_run
    with_sensitivity(out)
    rep = report_module.make_report(out, tmp_path / "rep")
    sens = pd.read_parquet(out / "sensitivity.parquet").set_index("parameter")
    for row in rep.series["tornado"].itertuples():
        s = sens.loc[row.name]
        assert row.label == (f"{in_words(row.name)}\nbottom 10% ≤ {s.bottom_decile_max:.3g}, "
                             f"top 10% ≥ {s.top_decile_min:.3g}")


def test_report_format_svg_writes_svg_beside_each_png(small_run, tmp_path):
    import xml.etree.ElementTree as ET

    _, out = small_run
    dest = tmp_path / "rep"
    result = CliRunner().invoke(main, ["report", str(out), "-o", str(dest), "--format", "svg"])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.stem for p in dest.glob("*.png"))
    assert sorted(p.stem for p in dest.glob("*.svg")) == pngs and len(pngs) >= 7
    for svg in dest.glob("*.svg"):
        assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg", svg.name
    assert set(report_files_of(dest)) == {REPORT_FILE, *(p.name for p in dest.iterdir())}
    # A report in PNG only replaces the page and removes the SVGs it would leave describing an earlier report;
    # an SVG of someone else's with a chart's name stops it.
    (dest / "mine.svg").write_text("<svg/>")
    assert CliRunner().invoke(main, ["report", str(out), "-o", str(dest)]).exit_code == 0
    assert sorted(p.name for p in dest.glob("*.svg")) == ["mine.svg"]
    (dest / "survival.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    message = invoke_one_line_error(["report", str(out), "-o", str(dest), "--format", "svg"])
    assert "survival.svg: not written by simulator report" in message
