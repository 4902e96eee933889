"""Deliver a built email: by SMTP when REPORT_SMTP_URL is set, else as an .eml file in the outbox.

``REPORT_SMTP_URL`` is ``smtp://user:pass@host:587?starttls=1`` (plain, optionally upgraded with STARTTLS) or
``smtps://user:pass@host:465`` (TLS from the start); user and password are percent-decoded and optional. The
password never appears in an error message or a log line.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from report_lib.config import Settings
from report_lib.errors import ConfigError, DeliveryError
from report_lib.files import write_atomic

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
TRUE_VALUES = ("1", "true", "yes", "on")
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SmtpTarget:
    """A parsed REPORT_SMTP_URL; ``repr`` and ``safe_url`` hide the password."""

    host: str
    port: int
    use_ssl: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT_S

    @property
    def safe_url(self) -> str:
        scheme = "smtps" if self.use_ssl else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        query = "?starttls=1" if self.starttls else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"

    def __repr__(self) -> str:
        return f"SmtpTarget({self.safe_url})"


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one message: ``status`` is 'sent' (SMTP) or 'written' (outbox), as in email_deliveries.

    ``recipients`` are every address the message was for; ``refused`` the ones the server would not take (the
    others got it), with the server's answers in ``refusal``.
    """

    status: str
    message_id: str
    recipients: tuple[str, ...]
    path: Path | None = None
    refused: tuple[str, ...] = ()
    refusal: str = ""

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(address for address in self.recipients if address not in self.refused)


class _TrackedSMTP(smtplib.SMTP):
    """Notes when the server said "go ahead" (354) to the message itself: a failure after that is ambiguous."""

    message_sent = False
    _in_data = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)
        finally:
            self._in_data = False

    def getreply(self) -> tuple[int, bytes]:
        reply = super().getreply()
        if self._in_data and reply[0] == 354:
            self.message_sent = True
        return reply


class _TrackedSMTPS(_TrackedSMTP, smtplib.SMTP_SSL):
    """The same over TLS from the start (smtps://)."""


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse REPORT_SMTP_URL; raises ConfigError (without the password) when it is not usable."""
    parts = urlsplit(url.strip())
    shown = f"{parts.scheme}://{parts.username + ':***@' if parts.username else ''}{parts.hostname or ''}"
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(
            f"REPORT_SMTP_URL {shown!r} is not usable; expected smtp://user:pass@host:587?starttls=1 or "
            "smtps://user:pass@host:465 (user and password optional, percent-encoded)."
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise ConfigError(f"REPORT_SMTP_URL {shown!r} has an invalid port; expected a number such as 587.") from exc
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    try:
        timeout = float(query.get("timeout", DEFAULT_TIMEOUT_S))
    except ValueError as exc:
        raise ConfigError(f"REPORT_SMTP_URL {shown!r} has timeout={query['timeout']!r}; expected seconds.") from exc
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        use_ssl=parts.scheme == "smtps",
        starttls=query.get("starttls", "").lower() in TRUE_VALUES,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        timeout=timeout,
    )


def _recipients(message: EmailMessage) -> tuple[str, ...]:
    fields = [str(value) for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    return tuple(address for _, address in getaddresses(fields) if address)


def deliver(message: EmailMessage, settings: Settings) -> DeliveryResult:
    """Send ``message`` by SMTP (settings.smtp_url) or write it to settings.outbox_dir as ``<message-id>.eml``.

    Raises:
        DeliveryError: no Message-ID or recipients, the SMTP server refused or could not be reached, or the outbox
            is not writable. The message names the server without its password.
    """
    message_id = str(message.get("Message-ID") or "")
    recipients = _recipients(message)
    if not message_id or not recipients:
        raise DeliveryError(
            f"The message has {'no Message-ID' if not message_id else 'no recipients'}; expected both. "
            "Build it with build_store_email or build_digest_email.",
            message_id=message_id or None,
        )
    if settings.smtp_url:
        return _send_smtp(message, parse_smtp_url(settings.smtp_url), message_id, recipients)
    return _write_outbox(message, settings.outbox_dir, message_id, recipients)


def outbox_name(message_id: str) -> str:
    """A safe file name for a Message-ID: letters, digits, dots, dashes and @ only."""
    slug = re.sub(r"[^A-Za-z0-9.@-]+", "_", message_id.strip().strip("<>")).strip("._")
    return f"{slug[:150] or 'message'}.eml"


def _write_outbox(message: EmailMessage, outbox: Path, message_id: str, recipients: tuple[str, ...]) -> DeliveryResult:
    path = outbox / outbox_name(message_id)
    try:
        write_atomic(path, message.as_bytes())
    except OSError as exc:
        raise DeliveryError(
            f"Could not write {path}: {exc}. Expected a writable REPORT_OUTBOX_DIR ({outbox}); create it or point "
            "REPORT_OUTBOX_DIR elsewhere.",
            message_id=message_id,
            recipients=recipients,
        ) from exc
    log.info("wrote %s for %s (no REPORT_SMTP_URL)", path, ", ".join(recipients))
    return DeliveryResult(status="written", message_id=message_id, recipients=recipients, path=path)


@contextmanager
def _session(target: SmtpTarget) -> Iterator[_TrackedSMTP]:
    """A connected (TLS, logged-in when configured) SMTP client, closed afterwards."""
    context = ssl.create_default_context()
    if target.use_ssl:
        client: _TrackedSMTP = _TrackedSMTPS(target.host, target.port, timeout=target.timeout, context=context)
    else:
        client = _TrackedSMTP(target.host, target.port, timeout=target.timeout)
    with client:
        if target.starttls:
            client.starttls(context=context)
        if target.username:
            _login(client, target.username, target.password or "")
        yield client


def _failure(action: str, exc: BaseException, target: SmtpTarget) -> str:
    return (
        f"Could not {action} via {target.safe_url}: {_redact(f'{type(exc).__name__}: {exc}', target.password)}"
        f"{_hint(exc, target)}. Check REPORT_SMTP_URL (host, port, starttls, credentials)"
    )


def _send_smtp(
    message: EmailMessage, target: SmtpTarget, message_id: str, recipients: tuple[str, ...]
) -> DeliveryResult:
    """Send once. A failure after the server took the message (no final answer: a timeout, a dropped connection) is
    raised with ``maybe_sent``: retrying it could deliver the message twice. A failing goodbye after the server
    accepted the message is only logged."""
    refused: dict[str, tuple[int, bytes]] | None = None
    client: _TrackedSMTP | None = None
    try:
        with _session(target) as client:
            refused = client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSErrors
        if refused is None:
            maybe_sent = bool(client and client.message_sent) and not isinstance(exc, smtplib.SMTPResponseException)
            raise DeliveryError(
                _failure(f"send {message_id} to {', '.join(recipients)}", exc, target)
                + (
                    "; the server had the whole message when it stopped answering, so it may have been delivered"
                    if maybe_sent
                    else " and that the server accepts these recipients; the send can be retried."
                ),
                message_id=message_id,
                recipients=recipients,
                maybe_sent=maybe_sent,
            ) from exc
        log.warning("%s: sent, but closing the connection failed: %s", message_id, _redact(str(exc), target.password))
    refusal = "; ".join(
        f"{address}: {code} {answer.decode(errors='replace')}"
        for address, (code, answer) in sorted((refused or {}).items())
    )
    if refusal:
        log.warning("%s: the server refused %s", message_id, refusal)
    log.info("sent %s to %s via %s", message_id, ", ".join(recipients), target.safe_url)
    return DeliveryResult(
        status="sent",
        message_id=message_id,
        recipients=recipients,
        refused=tuple(sorted(refused or {})),
        refusal=refusal,
    )


def check_smtp(smtp_url: str) -> str:
    """Connect, upgrade/log in as configured and say NOOP, for ``runner.py health``; returns a one-line summary.

    Raises:
        ConfigError: the URL is not usable. DeliveryError: the server cannot be reached or refuses the login.
    """
    target = parse_smtp_url(smtp_url)
    try:
        with _session(target) as client:
            client.ehlo_or_helo_if_needed()
            code, _ = client.noop()
            features = sorted(client.esmtp_features)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(_failure("reach the SMTP server", exc, target) + ".") from exc
    login = ", logged in" if target.username else ""
    tls = ", TLS" if target.use_ssl or target.starttls else ""
    return f"{target.safe_url} answers NOOP with {code}{tls}{login} (extensions: {', '.join(features) or 'none'})"


def _login(client: smtplib.SMTP, username: str, password: str) -> None:
    """Log in once with PLAIN or LOGIN (smtplib.login would retry refused credentials with every mechanism)."""
    client.ehlo_or_helo_if_needed()
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    advertised = client.esmtp_features["auth"].upper().split()
    client.user, client.password = username, password  # read by auth_plain / auth_login (documented)
    for mechanism, answer in (("PLAIN", client.auth_plain), ("LOGIN", client.auth_login)):
        if mechanism in advertised:
            client.auth(mechanism, answer)
            return
    client.login(username, password)  # CRAM-MD5 and whatever else smtplib knows


def _hint(exc: BaseException, target: SmtpTarget) -> str:
    if isinstance(exc, smtplib.SMTPNotSupportedError) and "AUTH" in str(exc) and not target.starttls:
        return " (servers often offer AUTH only after STARTTLS: add ?starttls=1 to REPORT_SMTP_URL)"
    return ""


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text
