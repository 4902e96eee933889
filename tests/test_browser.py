"""Rendering in the worker process: one persistent headless Chromium prints the PDFs (the same pages as Chromium's
command line), one nbconvert exporter per thread renders the HTML, and run_job uses both."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from render_fixtures import (
    PLOTLY_BLUE,
    colour_fraction,
    execute,
    fixture_notebook,
    ink_fraction,
    pdf_pages,
    require_chromium,
)
from sqlalchemy import Engine

from report_lib.errors import RenderError
from report_lib.params import ParameterFiles
from report_lib.render import html as html_module
from report_lib.render.browser import PersistentBrowser, close_worker_browsers, worker_printer
from report_lib.render.html import notebook_to_html, render_html
from report_lib.render.pdf import html_to_pdf
from report_lib.run.execute import ExecutionOptions, RetryPolicy, run_job
from report_lib.run.notebooks import NOTEBOOKS, NotebookSpec
from report_lib.run.plan import RunRequest, plan_jobs
from report_lib.warehouse.bulk import insert_frame
from report_lib.warehouse.loaders.daily import load_stores
from report_lib.warehouse.schema import stores

PROBE = Path(__file__).parent / "data" / "notebooks" / "runner_probe.ipynb"


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    """The render tests' fixture notebook (records, three charts, tagged cells), executed once."""
    return execute(fixture_notebook())


@pytest.fixture(scope="module")
def page(executed: nbformat.NotebookNode, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    ipynb = folder / "store_overview.ipynb"
    nbformat.write(executed, ipynb)
    return render_html(ipynb, folder / "store_overview.html", title="Store overview")


@pytest.fixture(scope="module")
def browser() -> Iterator[PersistentBrowser]:
    require_chromium()
    with PersistentBrowser() as printer:
        yield printer


def test_the_persistent_browser_prints_the_pages_the_command_line_prints(
    page: Path, browser: PersistentBrowser, tmp_path: Path
) -> None:
    html_to_pdf(page, tmp_path / "cli.pdf")  # Chromium started for this one PDF
    html_to_pdf(page, tmp_path / "kept.pdf", browser=browser)
    cli, kept = pdf_pages(tmp_path / "cli.pdf"), pdf_pages(tmp_path / "kept.pdf")
    assert len(kept) == len(cli) >= 1
    for ours, theirs in zip(kept, cli, strict=True):
        assert ours.shape == theirs.shape  # A4 from the template's @page rule, as the command line prints
        assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 1.0  # the same layout, at 40 dpi
    assert all(ink_fraction(p) > 0.01 for p in kept)
    assert max(colour_fraction(p, PLOTLY_BLUE) for p in kept) > 0.01  # charts drawn before printing


def test_one_browser_prints_many_reports(page: Path, browser: PersistentBrowser, tmp_path: Path) -> None:
    browser.start()
    started = browser._browser
    before = browser.pages
    for name in ("a", "b", "c"):
        html_to_pdf(page, tmp_path / f"{name}.pdf", browser=browser)
        assert (tmp_path / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    assert browser._browser is started  # no new Chromium per report
    assert browser.pages == before + 3
    assert not list(page.parent.glob(".*.print.html"))  # the copies that load plotly.js from a file are gone


def test_the_browser_is_replaced_after_max_pages(page: Path, tmp_path: Path) -> None:
    require_chromium()
    with PersistentBrowser(max_pages=2) as printer:
        html_to_pdf(page, tmp_path / "1.pdf", browser=printer)
        first = printer._browser
        html_to_pdf(page, tmp_path / "2.pdf", browser=printer)
        assert not printer.started  # closed after its second page
        html_to_pdf(page, tmp_path / "3.pdf", browser=printer)
        assert printer.started and printer._browser is not first and printer.pages == 1
    assert all((tmp_path / f"{n}.pdf").read_bytes()[:5] == b"%PDF-" for n in (1, 2, 3))


def test_a_page_whose_charts_never_draw_fails_clearly_and_the_next_print_works(page: Path, tmp_path: Path) -> None:
    require_chromium()
    broken = tmp_path / "broken.html"
    broken.write_text('<div class="plotly-graph-div"></div><p>no plotly.js here</p>', encoding="utf-8")
    with PersistentBrowser(timeout=1.0) as printer:
        with pytest.raises(RenderError, match="charts to draw within 1 s"):
            html_to_pdf(broken, tmp_path / "broken.pdf", browser=printer)
        assert not printer.started and not (tmp_path / "broken.pdf").exists()
        printer.timeout = 60.0
        html_to_pdf(page, tmp_path / "good.pdf", browser=printer)
    assert (tmp_path / "good.pdf").read_bytes()[:5] == b"%PDF-"


def test_each_thread_gets_its_own_worker_browser(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require_chromium()
    try:
        mine = worker_printer()
        assert mine is not None and worker_printer() is mine
        theirs: list[PersistentBrowser | None] = []
        thread = threading.Thread(target=lambda: theirs.append(worker_printer()))
        thread.start()
        thread.join()
        assert theirs[0] is not None and theirs[0] is not mine
        monkeypatch.setenv("REPORT_CHROMIUM", str(tmp_path / "no-such-chromium"))
        assert worker_printer() is None  # html_to_pdf then reports the missing browser, as without a printer
    finally:
        close_worker_browsers()


def _without_time(html: str) -> str:
    """The page without its generation time and the random ids of charts drawn from plotly's JSON mimetype."""
    html = re.sub(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "UUID", html)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d \w*", "TIME", html)


def test_the_exporter_is_built_once_and_keeps_nothing_between_notebooks(executed: nbformat.NotebookNode) -> None:
    other = nbformat.reads(nbformat.writes(executed), as_version=4)
    other.cells.append(nbformat.v4.new_markdown_cell("ONLY-IN-THE-SECOND-NOTEBOOK"))
    first = notebook_to_html(executed, title="First")
    exporter = html_module._exporter()
    second = notebook_to_html(other, title="Second")
    again = notebook_to_html(executed, title="First")
    assert html_module._exporter() is exporter  # reused, not rebuilt per report
    assert "ONLY-IN-THE-SECOND-NOTEBOOK" in second and "ONLY-IN-THE-SECOND-NOTEBOOK" not in again
    assert _without_time(again) == _without_time(first)
    html_module._EXPORTERS.__dict__.clear()
    rebuilt = notebook_to_html(executed, title="First")
    assert html_module._exporter() is not exporter
    assert _without_time(rebuilt) == _without_time(first)  # the same page as a new exporter renders


def test_run_job_renders_with_the_workers_exporter_and_browser(
    sqlite_warehouse: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_chromium()
    monkeypatch.setitem(NOTEBOOKS, "probe", NotebookSpec("probe", "Probe", PROBE))
    monkeypatch.setenv("REPORT_DATABASE_URL", sqlite_warehouse.url.render_as_string())  # run_job sets it
    with sqlite_warehouse.begin() as conn:
        insert_frame(conn, stores, pd.DataFrame({"code": ["S01", "S02"], "name": ["One", "Two"]}))
    request = RunRequest(stores="all", notebooks="probe", period="2024-03-04:2024-03-10")
    jobs = plan_jobs(request, stores=load_stores(sqlite_warehouse), files=ParameterFiles(), output_dir=tmp_path)
    options = ExecutionOptions(
        database_url=sqlite_warehouse.url.render_as_string(),
        batch="browser-test",
        formats=("html", "pdf"),
        retry=RetryPolicy(retries=0),
        engine="nbclient",  # rendering is what is tested here
    )
    try:
        results = [run_job(job, options) for job in jobs]
        printer = worker_printer()
        assert printer is not None and printer.pages == 2  # one browser printed both reports
    finally:
        close_worker_browsers()
    for result in results:
        assert result.status == "ok", result.error
        assert set(result.stages) == {"execute", "html", "pdf"} and all(s > 0 for s in result.stages.values())
        assert Path(result.outputs["pdf"]).read_bytes()[:5] == b"%PDF-"
        assert "Probe" in Path(result.outputs["html"]).read_text(encoding="utf-8")
