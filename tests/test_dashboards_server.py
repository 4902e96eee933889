"""The dashboards server, running: sign-in, what unauthenticated and wrong requests get, path traversal and the
/static/ file read of GHSA-2q59-h24c-w6fg, kernels a browser cannot run code in, and the dashboards in Chromium.

One server for the whole module, on the demo warehouse (3 stores, 400 days ending 2024-06-30). Expected numbers are
computed here from the warehouse with the library's loaders, independently of the dashboards' code.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine
from test_dashboards_support import (
    DEMO_END,
    Server,
    build_demo_warehouse,
    execute_request,
    kernel_exchange,
    open_page,
    request,
    sign_in,
    sign_in_headers,
    start_server,
    widget_states,
    write_users,
)

from report_lib.periods import parse_period
from report_lib.trends import resample_metric
from report_lib.warehouse.engine import create_warehouse_engine
from report_lib.warehouse.loaders.daily import load_daily_metrics, load_stores

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 90_000  # a page load on a busy 2-core machine: kernel start, imports, first figures
TODAY = DEMO_END + dt.timedelta(days=1)


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_demo_warehouse(tmp_path_factory.mktemp("dashboards-demo"))


@pytest.fixture(scope="module")
def demo(demo_url: str) -> Iterator[Engine]:
    engine = create_warehouse_engine(demo_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, demo_url: str) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("dashboards-server")
    write_users(folder)
    running = start_server(folder, demo_url, "--disconnected-grace", "20")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cookies(server: Server) -> dict[str, str]:
    signed_in = {}
    for user in ("alice", "bob", "boss"):
        status, cookie = sign_in(server, user)
        assert status == 302, f"sign-in of {user}: HTTP {status}"
        signed_in[user] = cookie
    return signed_in


def store_names(engine: Engine) -> dict[str, str]:
    frame = load_stores(engine)
    return dict(zip(frame["code"], frame["name"], strict=True))


def revenue_text(engine: Engine, store: str, period_text: str) -> str:
    """The period's revenue as the tile shows it, from daily_metrics summed here."""
    period = parse_period(period_text, today=TODAY)
    daily = load_daily_metrics(engine, stores=[store], start=period.start, end=period.end)
    return f"${daily['revenue'].sum():,.0f}"


# --- HTTP: sign-in, refusals, traversal -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/", 302),
        ("GET", "/voila/render/overview.ipynb?store=S01", 302),
        ("GET", "/voila/tree/", 302),
        ("GET", "/voila/api/contents/", 403),
        ("GET", "/api/kernels/00000000-0000-0000-0000-000000000000", 403),
        ("POST", "/voila/api/shutdown/00000000-0000-0000-0000-000000000000", 403),
    ],
)
def test_unauthenticated_requests_are_refused(server: Server, method: str, path: str, expected: int) -> None:
    status, headers, body = request(server, method, path, body="" if method == "POST" else None)
    assert status == expected
    if expected == 302:
        assert headers["location"].startswith("/login?next=")
    assert b"S01" not in body and b"kernelId" not in body


def test_wrong_passwords_get_no_session(server: Server) -> None:
    for user, password in (("alice", "bob-password"), ("mallory", "alice-password"), ("alice", "")):
        status, cookie = sign_in(server, user, password or "x")
        assert status == 401
        assert "username-" not in cookie  # no login cookie was set


TRAVERSALS = [
    "/static/etc/passwd",  # GHSA-2q59-h24c-w6fg: Voila < 0.5.6 served any file under /static/
    "/static/../../../../etc/passwd",
    "/voila/static/../../../../../../../../etc/passwd",
    "/voila/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/voila/static/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/files/..%2f..%2fparameters%2fusers.yaml",
    "/voila/files/voila.json",
    "/voila/templates/store_dashboards/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/templates/%2e%2e/static/passwd",
    "/voila/labextensions/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/api/themes/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/dashboard-assets/..%2fplotly.min.js",
    "/voila/render/..%2f..%2fnotebooks%2fkpis.ipynb",
    "/voila/render/../notebooks/kpis.ipynb",
    "/voila/tree/..",
    "/voila/api/contents/..%2fparameters",
    "/files/parameters/users.yaml",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_file_outside_the_dashboards_is_served(server: Server, cookies: dict[str, str], path: str) -> None:
    status, _, body = request(server, "GET", path, cookie=cookies["boss"])
    assert status in {403, 404, 500}, f"{path} answered {status}"
    assert not re.search(rb"root:[^:]*:0:0:", body)
    assert b"$argon2" not in body and b"StoreReport" not in body


def test_https_serves_secure_cookies_and_hsts(tmp_path: Path, demo_url: str) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is absent: no certificate to test HTTPS with")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    write_users(tmp_path)
    https = start_server(tmp_path, demo_url, "--certfile", "cert.pem", "--keyfile", "key.pem")
    try:
        status, headers, _ = request(https, "GET", "/login")
        assert status == 200 and headers["strict-transport-security"] == "max-age=31536000"
        status, cookies, location = sign_in_headers(https, "alice")
        assert (status, location) == (302, "/")
        session = next(cookie for cookie in cookies if cookie.startswith("username-"))
        for flag in ("Secure", "HttpOnly", "SameSite=Lax", "expires="):
            assert flag in session
        assert all("Secure" in cookie for cookie in cookies)  # the XSRF cookie too
    finally:
        https.stop()


def test_a_kernel_above_the_memory_bound_is_shut_down(tmp_path: Path, demo_url: str) -> None:
    write_users(tmp_path)
    bounded = start_server(tmp_path, demo_url, "--kernel-memory-mb", "50")  # a dashboard kernel uses ~150 MB
    try:
        _, cookie = sign_in(bounded, "alice")
        _, kernel_id = open_page(bounded, cookie, "/voila/render/overview.ipynb")
        deadline = time.monotonic() + 60
        while request(bounded, "GET", f"/api/kernels/{kernel_id}", cookie=cookie)[0] == 200:
            assert time.monotonic() < deadline, "the kernel was not stopped a minute after passing the bound"
            time.sleep(1)
        assert re.search(r"shutting down dashboard kernel .* MB resident, above the 50 MB bound", bounded.log_tail(200))
    finally:
        bounded.stop()


def test_the_widget_front_end_is_served_once_and_cacheable(server: Server) -> None:
    status, headers, body = request(server, "GET", "/voila/dashboard-assets/widgetbundle.js?v=1")
    assert status == 200 and len(body) > 1_000_000
    assert "max-age=31536000" in headers.get("cache-control", "")


# --- kernels: no code from the browser, no other user's kernel, no other store's data ------------------------------


def test_a_browser_cannot_run_code_in_its_kernel(server: Server, cookies: dict[str, str]) -> None:
    _, kernel_id = open_page(server, cookies["alice"], "/voila/render/overview.ipynb")
    code = "import os; print('EXECUTED', os.environ.get('REPORT_DATABASE_URL'))"
    received = kernel_exchange(server, cookies["alice"], kernel_id, [execute_request(code)])
    types = [message["header"]["msg_type"] for message in received]
    assert "kernel_info_reply" in types
    assert not {"execute_reply", "execute_input", "execute_result", "stream", "error"} & set(types)
    assert "EXECUTED" not in str(received)


def test_another_users_kernel_is_refused(server: Server, cookies: dict[str, str]) -> None:
    _, kernel_id = open_page(server, cookies["alice"], "/voila/render/overview.ipynb")
    assert request(server, "GET", f"/api/kernels/{kernel_id}", cookie=cookies["alice"])[0] == 200
    assert request(server, "GET", f"/api/kernels/{kernel_id}", cookie=cookies["bob"])[0] == 403
    with pytest.raises(Exception, match="403"):
        kernel_exchange(server, cookies["bob"], kernel_id, [])
    shutdown = request(server, "POST", f"/voila/api/shutdown/{kernel_id}", cookie=cookies["bob"], body="")
    assert shutdown[0] == 403  # XSRF or ownership: either way bob cannot stop alice's page
    assert request(server, "GET", f"/api/kernels/{kernel_id}", cookie=cookies["alice"])[0] == 200


def test_a_direct_request_for_another_store_gets_nothing_of_it(
    server: Server, cookies: dict[str, str], demo: Engine
) -> None:
    names = store_names(demo)
    html, kernel_id = open_page(server, cookies["alice"], "/voila/render/overview.ipynb?store=S02&period=2024-W20")
    states = widget_states(server, cookies["alice"], kernel_id)
    s02_revenue = revenue_text(demo, "S02", "2024-W20")
    s01_revenue = revenue_text(demo, "S01", "2024-W20")
    for text in (html, states):
        assert names["S02"] not in text and "S02" not in text and s02_revenue not in text
    assert s01_revenue in states  # the page shows alice's store instead
    assert "cannot see" in states  # and says the link asked for something else


# --- in Chromium ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is absent (Debian's chromium package; make setup installs it)"
        if os.environ.get("REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"Chromium is required (REQUIRE_CHROMIUM=1) but {reason}")
        pytest.skip(f"{reason}; set REQUIRE_CHROMIUM=1 to make this a failure")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def signed_in_page(browser: Any, server: Server, user: str, tmp_path: Path) -> Iterator[Any]:
    """A page of a fresh browser context signed in as ``user``; a screenshot in tmp_path if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.base + "login")
        page.fill("#username", user)
        page.fill("#password", f"{user}-password")
        page.click("button[type=submit]")
        page.wait_for_url(server.base)
        yield page
    except BaseException:
        shot = tmp_path / f"failure-{user}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}\nserver log:\n{server.log_tail()}")
        raise
    finally:
        context.close()


def open_dashboard(page: Any, server: Server, name: str, query: str = "") -> None:
    page.goto(f"{server.base}voila/render/{name}.ipynb{query}")
    page.wait_for_selector(".js-plotly-plot .main-svg")
    wait_idle(page)


def wait_idle(page: Any) -> None:
    page.wait_for_function("!document.querySelector('.sd-status-busy')")


def picker(page: Any, label: str) -> Any:
    return page.get_by_label(label, exact=True)


def tile(page: Any, kpi: str) -> Any:
    return page.locator(f".sd-tile[data-kpi={kpi}] .sd-tile-value")


def chart_y(page: Any, css_class: str, trace: int = 0) -> list[float]:
    return list(
        page.evaluate(
            "([cls, i]) => Array.from(document.querySelector('.' + cls + ' .js-plotly-plot')._fullData[i].y)",
            [css_class, trace],
        )
    )


def expected_trend(engine: Engine, store: str, period_text: str) -> list[float]:
    """Daily revenue over the overview's window (91 days, or three periods, to the period's end), gaps as 0."""
    period = parse_period(period_text, today=TODAY)
    series = resample_metric(load_daily_metrics(engine, stores=[store], end=DEMO_END), freq="D", metric="revenue")
    start = pd.Timestamp(period.end - dt.timedelta(days=max(91, 3 * period.days) - 1))
    return series[(series.index >= start) & (series.index <= pd.Timestamp(period.end))].tolist()


def test_overview_shows_the_right_numbers_as_store_and_period_change(
    browser: Any, server: Server, demo: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    names = store_names(demo)
    with signed_in_page(browser, server, "boss", tmp_path) as page:
        elsewhere: list[str] = []  # the page works offline: nothing fetched from a CDN
        page.on(
            "request", lambda r: None if r.url.startswith((server.base, "data:", "blob:")) else elsewhere.append(r.url)
        )
        open_dashboard(page, server, "overview", "?store=S01&period=2024-W20")
        expect(tile(page, "revenue")).to_have_text(revenue_text(demo, "S01", "2024-W20"))
        assert chart_y(page, "sd-trend") == pytest.approx(expected_trend(demo, "S01", "2024-W20"))

        picker(page, "Stores").select_option(label=f"S02 · {names['S02']}")
        expect(tile(page, "revenue")).to_have_text(revenue_text(demo, "S02", "2024-W20"))
        wait_idle(page)
        assert chart_y(page, "sd-trend") == pytest.approx(expected_trend(demo, "S02", "2024-W20"))

        picker(page, "Period").select_option(label="May 2024")
        expect(tile(page, "revenue")).to_have_text(revenue_text(demo, "S02", "2024-05"))
        wait_idle(page)
        assert chart_y(page, "sd-trend") == pytest.approx(expected_trend(demo, "S02", "2024-05"))
        assert page.locator(".sd-status-error, .sd-status-denied").count() == 0
        assert elsewhere == []


def test_a_restricted_user_sees_only_their_store(browser: Any, server: Server, demo: Engine, tmp_path: Path) -> None:
    names = store_names(demo)
    with signed_in_page(browser, server, "alice", tmp_path) as page:
        open_dashboard(page, server, "overview", "?store=S02&period=2024-W20")  # by URL
        text = page.inner_text("body")
        assert "cannot see" in text
        assert names["S02"] not in text and names["S03"] not in text
        assert tile(page, "revenue").inner_text() == revenue_text(demo, "S01", "2024-W20")
        options = picker(page, "Stores").locator("option").all_inner_texts()  # by widget: nothing else to pick
        assert [option.replace("\xa0", " ") for option in options] == [f"S01 · {names['S01']}"]
        with pytest.raises(Exception, match="did not find some options"):
            picker(page, "Stores").select_option(label=f"S02 · {names['S02']}", timeout=2_000)


def test_every_dashboard_draws_and_updates_in_the_browser(browser: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with signed_in_page(browser, server, "bob", tmp_path) as page:
        open_dashboard(page, server, "forecast")
        page.locator(".widget-slider", has_text="Days ahead").locator(".ui-slider-handle, .noUi-handle").focus()
        page.keyboard.press("Home")  # the slider to its minimum: 7 days
        expect(page.locator(".sd-forecast")).to_contain_text("7 days ahead")
        wait_idle(page)
        forecast_points = page.evaluate(
            "() => document.querySelector('.sd-forecast .js-plotly-plot')"
            "._fullData.find(t => t.name === 'forecast').x.length"
        )
        assert forecast_points == 7
        for name, css_class in (
            ("anomalies", "sd-anomalies"),
            ("customers", "sd-segments"),
            ("products", "sd-sellers"),
        ):
            open_dashboard(page, server, name)
            assert page.locator(f".{css_class} .js-plotly-plot").count() == 1, name
            assert page.locator(".sd-status-error, .sd-status-denied, .sd-error").count() == 0, name
            page.screenshot(path=str(tmp_path / f"{name}.png"))


def test_closing_a_page_stops_its_kernel(browser: Any, server: Server, cookies: dict[str, str], tmp_path: Path) -> None:
    with signed_in_page(browser, server, "bob", tmp_path) as page:
        open_dashboard(page, server, "anomalies")
        kernel_id = page.evaluate(
            "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
        )
        assert request(server, "GET", f"/api/kernels/{kernel_id}", cookie=cookies["bob"])[0] == 200
        page.close(run_before_unload=True)
    deadline = time.monotonic() + 60
    while request(server, "GET", f"/api/kernels/{kernel_id}", cookie=cookies["bob"])[0] == 200:
        assert time.monotonic() < deadline, f"kernel {kernel_id} still running a minute after its page closed"
        time.sleep(1)
