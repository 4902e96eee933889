"""HTML and PDF rendering of an executed fixture notebook: offline, no code, our header, charts drawn."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from render_fixtures import (
    CHROMIUM_ARGS,
    INSIGHTS,
    PLOTLY_BLUE,
    STORE_NAME,
    colour_fraction,
    execute,
    fixture_notebook,
    ink_fraction,
    pdf_pages,
    require_chromium,
)

from report_lib.errors import BrowserNotFoundError, RenderError, ReportNotFoundError
from report_lib.record import RECORD_MIMETYPE, read_records
from report_lib.render.html import notebook_to_html, render_html
from report_lib.render.pdf import html_to_pdf
from report_lib.render.report import render_outputs

REMOTE_REFERENCE = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.IGNORECASE)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """The fixture notebook executed once (python3 kernel of this venv), saved and rendered: (ipynb, html, text)."""
    folder = tmp_path_factory.mktemp("render")
    ipynb = folder / "store_overview.ipynb"
    nbformat.write(execute(fixture_notebook()), ipynb)
    html = render_html(ipynb, folder / "store_overview.html", title="Store overview")
    yield ipynb, html, html.read_text(encoding="utf-8")


def test_records_are_read_back_from_the_executed_notebook(rendered: tuple[Path, Path, str]) -> None:
    records = read_records(nbformat.read(rendered[0], as_version=4))
    assert records["store_name"] == STORE_NAME
    assert records["kpis"][3]["change_pct"] is None
    assert set(records) >= {"figure:trend", "figure:categories", "insights"}


def test_html_has_header_tiles_and_insights_escaped(rendered: tuple[Path, Path, str]) -> None:
    html = rendered[2]
    assert "Lyon &lt;Part-Dieu&gt; &amp; Co" in html
    assert STORE_NAME not in html  # never raw
    assert "<title>Lyon &lt;Part-Dieu&gt; &amp; Co · Store overview</title>" in html
    tiles = re.findall(r'<div class="report-tile-value">([^<]*)</div>', html)
    changes = re.findall(r'<div class="report-tile-change tone-(\w+)">([^<]*)', html)
    assert tiles == ["€123,457", "2,345", "5.5%", "812"]
    assert changes == [("good", "+12.2%"), ("bad", "\u22122.3%"), ("bad", "+1.4 pp"), ("flat", "no comparison")]
    assert re.findall(r"<li>([^<]*)</li>", html) == INSIGHTS
    assert "Week 10, 2024 · compared with the previous period</p>" in html


def test_html_has_no_code_no_removed_outputs_and_no_records(rendered: tuple[Path, Path, str]) -> None:
    html = rendered[2]
    assert "VISIBLE-OUTPUT" in html  # outputs in general survive...
    for hidden in ("CODE-MARKER", "record_figure(", "REMOVED-CELL-OUTPUT", "REMOVED-OUTPUT", "STDERR-NOISE"):
        assert hidden not in html, hidden
    assert RECORD_MIMETYPE not in html
    assert '<div class="jp-InputArea' not in html.replace(
        '<div class="jp-InputArea jp-Cell-inputArea"><div class="jp-RenderedHTMLCommon jp-RenderedMarkdown', ""
    )  # markdown cells keep their input area; code cells have none


def test_html_is_offline_with_plotly_js_inlined_once(rendered: tuple[Path, Path, str]) -> None:
    html = rendered[2]
    assert REMOTE_REFERENCE.findall(html) == []
    assert "require.js" not in html and "cdnjs.cloudflare.com" not in html
    assert html.count("window.PlotlyConfig = {MathJaxConfig: 'local'};") == 1
    assert len(re.findall(r"\* plotly\.js v\d", html)) == 1
    assert html.count('class="plotly-graph-div"') == 3  # two via the report renderer, one from the JSON mimetype
    assert 4_000_000 < len(html.encode()) < 7_000_000


def test_the_notebook_is_not_modified_by_rendering() -> None:
    nb = nbformat.v4.new_notebook()
    output = nbformat.v4.new_output("display_data", data={RECORD_MIMETYPE: {"name": "store", "value": "S9"}})
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[output])]
    before = nbformat.writes(nb)
    html = notebook_to_html(nb)
    assert nbformat.writes(nb) == before
    assert "S9" in html and "plotly.js" not in html  # no chart: no 4.8 MB of plotly.js
    assert len(html) < 1_000_000


@pytest.mark.parametrize(
    ("defaults", "expected"),
    [
        ({}, "Store report"),
        ({"title": "Trends", "store_name": "Nice Etoile"}, "Nice Etoile · Trends"),
    ],
)
def test_header_falls_back_to_defaults(defaults: dict[str, str], expected: str) -> None:
    html = notebook_to_html(nbformat.v4.new_notebook(), defaults=defaults)
    assert f"<title>{expected}</title>" in html


def test_render_html_of_a_missing_notebook_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="re-run the report"):
        render_html(tmp_path / "missing.ipynb", tmp_path / "out.html")
    assert not (tmp_path / "out.html").exists()


def test_charts_draw_in_an_offline_browser(rendered: tuple[Path, Path, str]) -> None:
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(offline=True).new_page()
            remote: list[str] = []
            page.on("request", lambda request: remote.append(request.url) if "://" in request.url[:8] else None)
            page.goto(rendered[1].as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
            plots = page.locator(".js-plotly-plot").count()
            traces = page.locator(".js-plotly-plot .trace").count()
            bars = page.locator(".js-plotly-plot .trace.bars path").count()
            header = page.locator(".report-bar").inner_text()
        finally:
            browser.close()
    assert [url for url in remote if not url.startswith("file://")] == []
    assert (plots, traces) == (3, 3)
    assert bars == 3
    assert STORE_NAME in header


def test_render_outputs_writes_html_and_a_pdf_with_the_charts(rendered: tuple[Path, Path, str], tmp_path: Path) -> None:
    require_chromium()
    executed = shutil.copy(rendered[0], tmp_path / "store_overview.ipynb")
    written = render_outputs(Path(executed), formats=("html", "pdf"), title="Store overview")
    assert written == {"html": str(tmp_path / "store_overview.html"), "pdf": str(tmp_path / "store_overview.pdf")}
    pdf = Path(written["pdf"])
    assert pdf.read_bytes()[:5] == b"%PDF-"
    pages = pdf_pages(pdf)
    assert 1 <= len(pages) <= 4
    assert all(ink_fraction(page) > 0.01 for page in pages)  # no blank page
    assert max(colour_fraction(page, PLOTLY_BLUE) for page in pages) > 0.01  # drawn traces, not empty axes
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".ppm")) == [
        "store_overview.html",
        "store_overview.ipynb",
        "store_overview.pdf",
    ]  # no temporary files left behind


def test_without_a_browser_the_pdf_is_skipped_with_a_warning(
    rendered: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("REPORT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    executed = Path(shutil.copy(rendered[0], tmp_path / "kpis.ipynb"))
    with caplog.at_level(logging.WARNING, logger="report_lib.render.report"):
        written = render_outputs(executed, formats=("pdf",))
    assert written == {}
    assert "kpis.pdf: No Chromium found" in caplog.text and "REPORT_CHROMIUM" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kpis.ipynb"]


def test_unknown_output_formats_are_named(tmp_path: Path) -> None:
    with pytest.raises(ReportNotFoundError, match="No output format named 'docx'; known: html, pdf"):
        render_outputs(tmp_path / "x.ipynb", formats=("html", "docx"))


def test_pdf_without_a_browser_or_html_raises_clearly(tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    with pytest.raises(RenderError, match="does not exist"):
        html_to_pdf(html, tmp_path / "out.pdf")
    html.write_text("<p>hi</p>", encoding="utf-8")
    with pytest.raises(BrowserNotFoundError, match="PDF output is skipped"):
        html_to_pdf(html, tmp_path / "out.pdf", browser=tmp_path / "no-such-chromium")
    assert not (tmp_path / "out.pdf").exists()


class _BrokenPrinter:
    """A printer (the persistent-browser slot) that writes something that is not a PDF."""

    def print_pdf(self, html_path: Path, pdf_path: Path) -> None:
        pdf_path.write_text("not a pdf", encoding="utf-8")


def test_a_printer_object_is_used_and_its_output_checked(tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    html.write_text("<p>hi</p>", encoding="utf-8")
    with pytest.raises(RenderError, match="wrote no PDF"):
        html_to_pdf(html, tmp_path / "out.pdf", browser=_BrokenPrinter())
    assert not (tmp_path / "out.pdf").exists()
