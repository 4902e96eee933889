"""Store and digest emails: structure (HTML, text, cid: charts, PDF), escaping, headers, SMTP and outbox delivery."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import struct
import subprocess
import zlib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from render_fixtures import INSIGHTS, KPIS, smtp_server

from report_lib.config import Settings
from report_lib.errors import ConfigError, DeliveryError
from report_lib.render.delivery import check_smtp, deliver, outbox_name, parse_smtp_url
from report_lib.render.email import StoreSummary, build_digest_email, build_store_email, message_id_for

SENDER = "Store Reports <reports@example.com>"
PASSWORD = "s3cr:et/pa ss"  # needs percent-encoding in the URL
PASSWORD_IN_URL = "s3cr%3Aet%2Fpa%20ss"


def tiny_png(rgb: tuple[int, int, int]) -> bytes:
    """A valid 2x2 PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


RED, BLUE = tiny_png((200, 0, 0)), tiny_png((0, 0, 200))


def store_records(**overrides: Any) -> dict[str, Any]:
    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[2, 1, 3])).update_layout(title="Daily revenue")
    records = {
        "store": "S01",
        "store_name": "Lyon Part-Dieu",
        "period_label": "Week 10, 2024",
        "currency": "EUR",
        "comparison": "previous",
        "kpis": KPIS,
        "insights": INSIGHTS,
        "figure:trend": json.loads(figure.to_json()),
    }
    return {**records, **overrides}


def parse(message: EmailMessage | bytes) -> EmailMessage:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


@pytest.fixture
def pdf_file(tmp_path: Path) -> Path:
    path = tmp_path / "store_overview.pdf"
    path.write_bytes(b"%PDF-1.4\n% fixture\n%%EOF\n")
    return path


def build(pdf_file: Path | None = None, **record_overrides: Any) -> EmailMessage:
    return build_store_email(
        store_records(**record_overrides),
        recipients=["Ann Manager <ann@example.com>", "bob@example.com"],
        sender=SENDER,
        pdf_path=pdf_file,
        html_link="https://reports.example.com/2024-W10/S01/store_overview.html",
        images={"trend": RED, "categories": BLUE},
        idempotency_key="store-report:S01:2024-W10",
    )


def test_store_email_has_text_html_cid_charts_and_the_pdf(pdf_file: Path) -> None:
    message = parse(build(pdf_file))
    assert message.get_content_type() == "multipart/mixed"
    assert message["Subject"] == "Lyon Part-Dieu (S01): Store performance report, Week 10, 2024"
    assert [a.addr_spec for a in message["To"].addresses] == ["ann@example.com", "bob@example.com"]
    html = body(message, "html")
    cids = re.findall(r'src="cid:([^"]+)"', html)
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    assert [part["Content-ID"].strip("<>") for part in images] == cids
    assert [part.get_content() for part in images] == [RED, BLUE]
    related = next(part for part in message.walk() if part.get_content_type() == "multipart/related")
    assert [part.get_content_type() for part in related.iter_parts()] == ["text/html", "image/png", "image/png"]
    assert 'alt="Daily revenue"' in html and 'alt="categories"' in html
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "s01-week-10-2024.pdf"
    assert attachment.get_content() == pdf_file.read_bytes()
    assert "data:" not in html and "<script" not in html and "<style" not in html


def test_store_email_bodies_carry_the_numbers_and_the_link(pdf_file: Path) -> None:
    message = parse(build(pdf_file))
    text, html = body(message, "plain"), body(message, "html")
    assert "Changes against the previous period.\n\n- Revenue: €123,457 (+12.2%)" in text
    assert "- Return rate: 5.5% (+1.4 pp)" in text
    assert "- Customers: 812 (no comparison)" in text
    assert all(f"* {sentence}" in text for sentence in INSIGHTS)
    assert "Interactive report: https://reports.example.com/2024-W10/S01/store_overview.html" in text
    assert "attached as a PDF" in text
    assert re.findall(r">(€123,457|2,345|5\.5%|812)</td>", html) == ["€123,457", "2,345", "5.5%", "812"]
    assert 'href="https://reports.example.com/2024-W10/S01/store_overview.html"' in html


def test_without_pdf_or_url_the_email_says_where_the_report_is() -> None:
    message = parse(
        build_store_email(store_records(), recipients=["ann@example.com"], sender=SENDER, html_link="reports/x.html")
    )
    assert message.get_content_type() == "multipart/alternative"
    assert list(message.iter_attachments()) == []
    text, html = body(message, "plain"), body(message, "html")
    assert "attached" not in text and "Interactive report: reports/x.html" in text
    assert "<code" in html and "href=" not in html


def test_store_names_are_escaped_in_html() -> None:
    evil = "<script>alert(1)</script>"
    message = parse(build(store_name=evil, insights=['<img src=x onerror="alert(2)">']))
    html = body(message, "html")
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert evil in body(message, "plain")  # plain text is not HTML: shown as typed


def test_a_store_name_cannot_inject_headers() -> None:
    message = parse(build(store_name="Evil\r\nBcc: victim@example.com\r\n\r\nbody"))
    assert message["Bcc"] is None
    assert "victim" not in "".join(f"{k}: {v}" for k, v in message.items() if k != "Subject")
    assert message["Subject"] == "Evil Bcc: victim@example.com body (S01): Store performance report, Week 10, 2024"


@pytest.mark.parametrize(
    "recipient", ["ann@example.com\r\nBcc: victim@example.com", "not-an-address", "Ann <ann@@example.com>"]
)
def test_bad_recipients_are_refused(recipient: str) -> None:
    with pytest.raises(ConfigError, match="is not an email address"):
        build_store_email(store_records(), recipients=[recipient], sender=SENDER)


def test_no_recipients_is_an_error() -> None:
    with pytest.raises(ConfigError, match="No recipient given"):
        build_store_email(store_records(), recipients=[], sender=SENDER)


def test_message_id_is_deterministic_per_idempotency_key() -> None:
    first, again = build(), build()
    assert first["Message-ID"] == again["Message-ID"] == message_id_for("store-report:S01:2024-W10", SENDER)
    assert re.fullmatch(r"<store-report-S01-2024-W10\.[0-9a-f]{16}@example\.com>", first["Message-ID"])
    assert message_id_for("store-report:S02:2024-W10", SENDER) != first["Message-ID"]
    assert first["X-Report-Key"] == "store-report:S01:2024-W10"
    unkeyed = build_store_email(store_records(), recipients=["a@example.com"], sender=SENDER)
    assert (
        unkeyed["Message-ID"]
        != build_store_email(store_records(), recipients=["a@example.com"], sender=SENDER)["Message-ID"]
    )


def test_digest_lists_failures_first_with_headline_numbers() -> None:
    summaries = [
        StoreSummary("S02", "Nice", "ok", revenue=98000.0, change_pct=-3.25, currency="EUR"),
        {"store": "S03", "store_name": "Paris <Opéra>", "status": "failed", "error": "KeyError: 'revenue' in cell 4"},
        StoreSummary("S01", "Lyon", "ok", revenue=123456.7, change_pct=12.2, currency="EUR"),
    ]
    message = parse(
        build_digest_email(summaries, recipients=["region@example.com"], sender=SENDER, period_label="Week 10, 2024")
    )
    assert message["Subject"] == "Store reports Week 10, 2024: 2 ok, 1 failed"
    text, html = body(message, "plain"), body(message, "html")
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert lines == [
        "- Paris <Opéra> (S03): KeyError: 'revenue' in cell 4",
        "- Paris <Opéra> (S03) [failed] revenue n/a, no comparison",
        "- Lyon (S01) [ok] revenue €123,457, +12.2%",
        "- Nice (S02) [ok] revenue €98,000, \u22123.2%",
    ]
    assert "Paris &lt;Opéra&gt; (S03): KeyError: &#39;revenue&#39; in cell 4" in html
    assert "<Opéra>" not in html


def test_digest_summary_status_is_checked() -> None:
    with pytest.raises(ConfigError, match="expected one of"):
        StoreSummary("S01", "Lyon", "done")


def test_smtp_delivery_with_login_keeps_the_password_out_of_the_message(pdf_file: Path) -> None:
    message = build(pdf_file)
    with smtp_server(user="reports", password=PASSWORD) as sink:
        url = f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{sink.port}"
        result = deliver(message, Settings(smtp_url=url))
    assert (result.status, result.message_id) == ("sent", message["Message-ID"])
    assert result.recipients == ("ann@example.com", "bob@example.com")
    assert sink.logins == [("reports", PASSWORD)]
    (envelope,) = sink.envelopes
    assert envelope.mail_from == "reports@example.com"
    assert envelope.rcpt_tos == ["ann@example.com", "bob@example.com"]
    received = parse(envelope.content)
    assert received["Message-ID"] == message["Message-ID"]
    assert len([p for p in received.walk() if p.get_content_type() == "image/png"]) == 2
    for secret in (PASSWORD, PASSWORD_IN_URL, "s3cr"):
        assert secret.encode() not in envelope.content


def test_smtp_failures_name_the_server_but_never_the_password() -> None:
    message = build()
    with smtp_server(user="reports", password="the-right-one") as sink:
        url = f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{sink.port}"
        with pytest.raises(DeliveryError) as refused:
            deliver(message, Settings(smtp_url=url))
    closed = f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{sink.port}"  # the server is gone now
    with pytest.raises(DeliveryError) as unreachable:
        deliver(message, Settings(smtp_url=closed))
    for error, expected in ((refused, "SMTPAuthenticationError"), (unreachable, "ConnectionRefusedError")):
        text = f"{error.value} {error.value.args!r} {error.value.__cause__}"
        assert expected in str(error.value)
        assert f"smtp://reports:***@127.0.0.1:{sink.port}" in str(error.value)
        assert "s3cr" not in text and PASSWORD_IN_URL not in text
        assert error.value.message_id == message["Message-ID"]


def test_check_smtp_logs_in_and_reports_without_the_password() -> None:
    with smtp_server(user="reports", password=PASSWORD) as sink:
        summary = check_smtp(f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{sink.port}")
        with pytest.raises(DeliveryError, match="Could not reach the SMTP server") as refused:
            check_smtp(f"smtp://reports:wrong-{PASSWORD_IN_URL}@127.0.0.1:{sink.port}")
    assert summary.startswith(f"smtp://reports:***@127.0.0.1:{sink.port} answers NOOP with 250, logged in")
    assert "auth" in summary
    assert "s3cr" not in summary and "s3cr" not in str(refused.value)
    assert sink.logins == [("reports", PASSWORD), ("reports", "wrong-" + PASSWORD)]
    assert sink.envelopes == []


def test_starttls_requested_from_a_server_without_it_fails_clearly() -> None:
    with smtp_server() as sink, pytest.raises(DeliveryError, match="STARTTLS extension not supported"):
        deliver(build(), Settings(smtp_url=f"smtp://127.0.0.1:{sink.port}?starttls=1"))


def test_starttls_then_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed, so no test certificate can be made")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts exactly this certificate
    with smtp_server(user="reports", password=PASSWORD, tls_context=server_tls, require_starttls=True) as sink:
        url = f"smtp://reports:{PASSWORD_IN_URL}@127.0.0.1:{sink.port}"
        with pytest.raises(DeliveryError, match=r"AUTH only after STARTTLS: add \?starttls=1"):
            deliver(build(), Settings(smtp_url=url))  # the server offers AUTH only after STARTTLS
        result = deliver(build(), Settings(smtp_url=url + "?starttls=1"))
    assert result.status == "sent"
    assert sink.logins == [("reports", PASSWORD)]
    assert len(sink.envelopes) == 1


def test_without_smtp_the_email_goes_to_the_outbox(tmp_path: Path, pdf_file: Path) -> None:
    message = build(pdf_file)
    settings = Settings(outbox_dir=tmp_path / "outbox")
    first = deliver(message, settings)
    again = deliver(build(pdf_file), settings)  # a resend replaces the same file
    assert first.status == "written" and first.path == again.path
    assert first.path is not None and first.path.name == outbox_name(message["Message-ID"])
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [first.path.name]
    assert re.fullmatch(r"store-report-S01-2024-W10\.[0-9a-f]{16}@example\.com\.eml", first.path.name)
    written = parse(first.path.read_bytes())
    assert written["Message-ID"] == message["Message-ID"]
    assert [a.get_filename() for a in written.iter_attachments()] == ["s01-week-10-2024.pdf"]


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        ("<a.b@example.com>", "a.b@example.com.eml"),
        ("<../../etc/passwd@x>", "etc_passwd@x.eml"),
        ("<a b/c\\d@x>", "a_b_c_d@x.eml"),
        ("<>", "message.eml"),
    ],
)
def test_outbox_names_are_safe(message_id: str, expected: str) -> None:
    assert outbox_name(message_id) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, False, False, None, None)),
        ("smtps://u:pw-secret@mail.example.com", ("mail.example.com", 465, True, False, "u", "pw-secret")),
        ("smtp://u%40x:p%3Aq@h:587?starttls=1", ("h", 587, False, True, "u@x", "p:q")),
        ("smtp://h:2525?starttls=0", ("h", 2525, False, False, None, None)),
    ],
)
def test_parse_smtp_url(url: str, expected: tuple[Any, ...]) -> None:
    target = parse_smtp_url(url)
    assert (target.host, target.port, target.use_ssl, target.starttls, target.username, target.password) == expected
    if target.password:
        assert target.password not in repr(target)


@pytest.mark.parametrize("url", ["http://u:hunter2@mail.example.com", "smtp://u:hunter2@", "smtp://u:hunter2@h:99999"])
def test_unusable_smtp_urls_are_config_errors_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_smtp_url(url)
    assert "hunter2" not in str(error.value)
    assert "expected" in str(error.value)


def test_a_message_without_recipients_is_not_delivered(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Message-ID"] = "<x@example.com>"
    with pytest.raises(DeliveryError, match="no recipients"):
        deliver(message, Settings(outbox_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []
