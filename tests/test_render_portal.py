"""The portal page: every report with status, links and errors; escaped; offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from report_lib.errors import ConfigError
from report_lib.render.portal import PortalEntry, portal_html, render_portal

ENTRIES = [
    PortalEntry("S02", "store_overview", "ok", store_name="Nice", html="S02/store_overview.html",
                pdf="S02/store_overview.pdf", ipynb="S02/store_overview.ipynb", duration=7.25),
    {"store": "S01", "store_name": "Lyon <Part-Dieu>", "notebook": "store_overview", "status": "ok",
     "html": "S01/store overview.html", "duration": 65.0, "title": "Store overview"},
    {"store": "S01", "store_name": "Lyon <Part-Dieu>", "notebook": "forecast", "status": "failed",
     "ipynb": "S01/forecast.ipynb", "error": "InsufficientDataError: <b>3</b> days of history", "duration": 2.0},
    PortalEntry("S03", "kpis", "running"),
]  # fmt: skip


def rows(html: str) -> list[str]:
    return re.findall(r"<tr class=\"row-(\w+)\">", html)


def test_portal_lists_every_report_with_status_links_and_errors(tmp_path: Path) -> None:
    out = render_portal(ENTRIES, period_label="Week 10, 2024", out_path=tmp_path / "2024-W10" / "index.html")
    html = out.read_text(encoding="utf-8")
    assert rows(html) == ["ok", "failed", "ok", "other"]  # by store, notebooks in the runner's order
    assert re.findall(r"<td>(Store overview|store_overview|forecast|kpis)</td>", html) == [
        "Store overview",
        "forecast",
        "store_overview",
        "kpis",
    ]
    assert "2 ok, 1 failed, 1 other: 4 reports for 3 stores." in html
    assert '<a href="S02/store_overview.html">HTML</a> · <a href="S02/store_overview.pdf">PDF</a>' in html
    assert '<a href="S01/store%20overview.html">HTML</a>' in html
    assert '<a href="S01/forecast.ipynb">notebook</a>' in html
    assert '<pre class="error">InsufficientDataError: &lt;b&gt;3&lt;/b&gt; days of history</pre>' in html
    assert "Lyon &lt;Part-Dieu&gt;" in html and "<Part-Dieu>" not in html
    assert html.count("Lyon &lt;Part-Dieu&gt;") == 1  # the store is named once, on its first row
    assert ">1 min 05 s<" in html and ">7.2 s<" in html and ">2.0 s<" in html
    assert "<script" not in html and not re.search(r"(src|href)=\"(https?:)?//", html)


@pytest.mark.parametrize(
    ("path", "href"),
    [
        ("S01/a b.html", "S01/a%20b.html"),
        ("https://reports.example.com/x.html", "https://reports.example.com/x.html"),
        ("javascript:alert(1)", None),
        ("file:///etc/passwd", None),
        ("/etc/passwd", None),
        ('S01/x".html', "S01/x%22.html"),
        (None, None),
    ],
)
def test_only_relative_paths_and_web_urls_become_links(path: str | None, href: str | None) -> None:
    html = portal_html([PortalEntry("S01", "kpis", "ok", html=path)], period_label="P")
    found = re.findall(r'<a href="([^"]*)">HTML</a>', html)
    assert found == ([href] if href else [])


def test_an_empty_period_says_so() -> None:
    html = portal_html([], period_label="Week 11, 2024")
    assert "No reports for this period." in html and "0 reports for 0 stores" in html


def test_entries_without_required_fields_are_refused() -> None:
    with pytest.raises(ConfigError, match="expected at least store, notebook and status"):
        portal_html([{"store": "S01"}], period_label="P")
