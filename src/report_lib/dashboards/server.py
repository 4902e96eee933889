"""``runner.py serve``: Voila on the dashboards folder, behind the sign-in, with our template, kernels bounded.

What the server enforces (none of it can be loosened by a voila.json found in the working directory: config
files are not read; ``dashboards/voila.json`` holds the display settings and is merged under these):

- binds 127.0.0.1 unless ``--ip`` says otherwise; one port, no silent fall-back to another one;
- sign-in with the accounts of ``parameters/users.yaml`` (``auth.DashboardIdentityProvider``); a page's kernel
  belongs to the user who opened it (``kernels``, ``auth.KernelOwnerAuthorizer``);
- kernels accept only widget (comm) messages, kernel_info and shutdown requests (Voila's ``allowed_message_types``):
  ``execute_request`` and every other request a browser could send are dropped, so a page cannot run code, only move
  widgets (or stop its own kernel);
- no tracebacks in pages, sources stripped, no template or theme override from the URL, no files served from the
  dashboards folder, only the widget front-end extensions loaded (no CDN needed);
- kernels: no page connected for ``--disconnected-grace`` s -> shut down; idle ``--idle-timeout`` s -> culled even
  if a page is open; resident memory above ``--kernel-memory-mb`` -> shut down. Preheated kernels are off: Voila
  0.5 refuses ``preheat_kernel`` together with the ``prelaunch_hook`` that ties a kernel to its user, and preheated
  pages stalled and missed FigureWidget updates here (see DESIGN.md "Known traps");
- HTTPS with ``--certfile``/``--keyfile`` (cookies then Secure and HSTS sent); behind a TLS-terminating proxy use
  ``--secure-cookies`` and ``--behind-proxy`` (trusts X-Forwarded-For/-Proto). ``--cookie-secret-file`` keeps
  sign-ins valid across restarts (default: a new random secret each start).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from traitlets.config import Config

from report_lib.config import Settings
from report_lib.dashboards.users import USERS_FILE, load_users
from report_lib.errors import ConfigError
from report_lib.warehouse.engine import create_warehouse_engine
from report_lib.warehouse.loaders.daily import load_stores

log = logging.getLogger(__name__)

TEMPLATE = "store_dashboards"
DEFAULT_PORT = 8866
WIDGET_EXTENSIONS = ["@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8", "anywidget"]
SECRET_ENV = ("REPORT_SMTP_URL", "REPORT_CELERY_BROKER_URL", "REPORT_DASHBOARD_COOKIE_SECRET", "JUPYTER_TOKEN")
PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``runner.py serve`` can be told; defaults are the safe choices."""

    port: int = DEFAULT_PORT
    ip: str = "127.0.0.1"
    base_url: str = "/"
    dashboards_dir: Path = PROJECT_ROOT / "dashboards"
    templates_dir: Path = PROJECT_ROOT / "templates" / "voila"
    users_file: Path | None = None  # default: <parameters_dir>/users.yaml
    certfile: Path | None = None
    keyfile: Path | None = None
    secure_cookies: bool = False
    behind_proxy: bool = False
    cookie_secret_file: Path | None = None
    idle_timeout: int = 1800
    disconnected_grace: int = 60
    kernel_memory_mb: int = 1024
    session_hours: float = 12.0

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"--port is {self.port}; expected 1 to 65535.")
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError("HTTPS needs both --certfile and --keyfile (PEM files); give both or neither.")
        for path in (self.certfile, self.keyfile):
            if path is not None and not path.is_file():
                raise ConfigError(f"{path} is not a file; expected a PEM certificate or key.")
        if not (self.dashboards_dir / "voila.json").is_file():
            raise ConfigError(f"{self.dashboards_dir} has no voila.json; expected the project's dashboards folder.")
        if not (self.templates_dir / TEMPLATE).is_dir():
            raise ConfigError(f"{self.templates_dir / TEMPLATE} is missing; expected the project's Voila template.")

    @property
    def https(self) -> bool:
        return self.certfile is not None


def users_path(options: ServeOptions, settings: Settings) -> Path:
    return (options.users_file or settings.parameters_dir / USERS_FILE).resolve()


def kernel_environment(settings: Settings) -> dict[str, str]:
    """The settings a dashboard kernel needs, as absolute values (its working folder differs from ours)."""
    return {
        "REPORT_DATABASE_URL": settings.absolute_database_url(),
        "REPORT_PARAMETERS_DIR": str(settings.parameters_dir.resolve()),
        "REPORT_LOG_DIR": str(settings.log_dir.resolve()),
        "REPORT_ENV": settings.env,
        "REPORT_LOG_LEVEL": settings.log_level,
    }


def build_config(options: ServeOptions, settings: Settings) -> Config:
    """The traitlets configuration of the Voila server: voila.json's display settings, then ours on top."""
    config = Config(json.loads((options.dashboards_dir / "voila.json").read_text(encoding="utf-8")))
    config.merge(
        Config(
            {
                "Voila": _app_settings(options),
                "VoilaConfiguration": _page_settings(),
                "DashboardKernelManager": {
                    "kernel_environment": kernel_environment(settings),
                    "memory_limit_mb": options.kernel_memory_mb,
                    "disconnected_grace": options.disconnected_grace,
                    "cull_idle_timeout": options.idle_timeout,
                    "cull_interval": 60,
                    "cull_connected": True,
                },
                "DashboardIdentityProvider": {
                    "users_file": str(users_path(options, settings)),
                    "session_hours": options.session_hours,
                    "secure_cookie": True if (options.https or options.secure_cookies) else None,
                },
            }
        )
    )
    return config


def _app_settings(options: ServeOptions) -> dict[str, Any]:
    headers = {
        "Content-Security-Policy": "frame-ancestors 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    secure = options.https or options.secure_cookies
    if secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return {
        "ip": options.ip,
        "port": options.port,
        "port_retries": 0,
        "base_url": options.base_url,
        "open_browser": False,
        "root_dir": str(options.dashboards_dir.resolve()),
        "config_file_paths": [],
        "identity_provider_class": "report_lib.dashboards.auth.DashboardIdentityProvider",
        "authorizer_class": "report_lib.dashboards.auth.KernelOwnerAuthorizer",
        "cookie_secret": _cookie_secret(options),
        "tornado_settings": {
            "headers": headers,
            "xheaders": options.behind_proxy,
            "xsrf_cookie_kwargs": {"samesite": "Lax", **({"secure": True} if secure else {})},
        },
    }


def _page_settings() -> dict[str, Any]:
    from report_lib.dashboards.kernels import bind_request_user  # jupyter-server loads only when serving

    return {
        "template": TEMPLATE,
        "show_tracebacks": False,
        "strip_sources": True,
        "allow_template_override": "NO",
        "allow_theme_override": "NO",
        "classic_tree": True,
        "preheat_kernel": False,
        "progressive_rendering": False,
        "file_allowlist": [],
        "file_denylist": [".*"],
        "extension_allowlist": WIDGET_EXTENSIONS,
        "http_header_envs": [],
        "prelaunch_hook": bind_request_user,
        "multi_kernel_manager_class": "report_lib.dashboards.kernels.DashboardKernelManager",
    }


def _cookie_secret(options: ServeOptions) -> bytes:
    if options.cookie_secret_file is not None:
        secret = options.cookie_secret_file.read_bytes().strip()
        if len(secret) < 32:
            raise ConfigError(f"{options.cookie_secret_file} holds {len(secret)} bytes; expected at least 32.")
        return secret
    from_env = os.environ.get("REPORT_DASHBOARD_COOKIE_SECRET", "").encode()
    return from_env if len(from_env) >= 32 else secrets.token_bytes(32)


def template_root(options: ServeOptions) -> Path:
    """A Jupyter data folder holding our template where Voila looks: <root>/voila/templates/<name>."""
    root = Path(tempfile.mkdtemp(prefix="store-dashboards-"))
    (root / "voila" / "templates").mkdir(parents=True)
    (root / "voila" / "templates" / TEMPLATE).symlink_to((options.templates_dir / TEMPLATE).resolve())
    return root


def check_accounts(options: ServeOptions, settings: Settings) -> int:
    """The number of accounts; refuses demo accounts in production and warns when nobody can sign in."""
    directory = load_users(users_path(options, settings))
    if settings.env == "prod":
        directory.refuse_demo_accounts()
    if not directory.accounts:
        log.warning("%s has no accounts: nobody can sign in", users_path(options, settings))
    return len(directory.accounts)


def check_warehouse(settings: Settings) -> int:
    """The number of stores in the warehouse; 0 (with a warning saying what to run) when it cannot be read yet."""
    url = settings.absolute_database_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        log.warning("no warehouse at %s yet: run `python runner.py demo` or import data; dashboards say so", url)
        return 0
    engine = create_warehouse_engine(url)
    try:
        return len(load_stores(engine))
    except SQLAlchemyError as exc:
        log.warning("the warehouse cannot be read (%s): run `python runner.py demo` or import data", type(exc).__name__)
        return 0
    finally:
        engine.dispose()


def run_server(options: ServeOptions, settings: Settings) -> int:
    """Start the dashboards server in the foreground until interrupted; returns the exit code."""
    from report_lib.dashboards.app import DashboardVoila  # voila and jupyter-server load only when serving

    accounts = check_accounts(options, settings)
    stores = check_warehouse(settings)
    config = build_config(options, settings)
    root = template_root(options)
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("JUPYTER_PATH")]))
    for name in SECRET_ENV:  # kernels inherit the server's environment: keep secrets they never need out of it
        os.environ.pop(name, None)
    app = DashboardVoila(config=config)
    app.certfile = str(options.certfile or "")
    app.keyfile = str(options.keyfile or "")
    app.initialize(argv=[])
    scheme = "https" if options.https else "http"
    log.info(
        "dashboards of %d stores for %d accounts at %s://%s:%d%s",
        stores, accounts, scheme, options.ip, options.port, options.base_url,
    )  # fmt: skip
    try:
        app.start()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``runner.py serve`` (also ``python -m report_lib.dashboards.server``)."""
    defaults = ServeOptions.__dataclass_fields__
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--ip", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--base-url", default="/", help="URL prefix when served under a path by a proxy")
    parser.add_argument("--users", type=Path, help="users file (default parameters/users.yaml)")
    parser.add_argument("--certfile", type=Path, help="PEM certificate: serve HTTPS (with --keyfile)")
    parser.add_argument("--keyfile", type=Path, help="PEM private key of --certfile")
    parser.add_argument("--secure-cookies", action="store_true", help="Secure cookies (HTTPS at a proxy)")
    parser.add_argument("--behind-proxy", action="store_true", help="trust X-Forwarded-For/-Proto headers")
    parser.add_argument("--cookie-secret-file", type=Path, help="file of >= 32 random bytes: sign-ins survive restarts")
    parser.add_argument(
        "--idle-timeout",
        type=int,
        default=defaults["idle_timeout"].default,
        help="seconds an open but unused page keeps its kernel (default %(default)s)",
    )
    parser.add_argument(
        "--disconnected-grace",
        type=int,
        default=defaults["disconnected_grace"].default,
        help="seconds a kernel outlives its closed page at most (default %(default)s)",
    )
    parser.add_argument(
        "--kernel-memory-mb",
        type=int,
        default=defaults["kernel_memory_mb"].default,
        help="a kernel above this resident memory is shut down (default %(default)s MB; one uses ~155 MB)",
    )
    parser.add_argument("--hash-password", action="store_true", help="print the argon2 hash of a password, exit")


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        port=args.port,
        ip=args.ip,
        base_url=args.base_url if args.base_url.endswith("/") else args.base_url + "/",
        users_file=args.users,
        certfile=args.certfile,
        keyfile=args.keyfile,
        secure_cookies=args.secure_cookies,
        behind_proxy=args.behind_proxy,
        cookie_secret_file=args.cookie_secret_file,
        idle_timeout=args.idle_timeout,
        disconnected_grace=args.disconnected_grace,
        kernel_memory_mb=args.kernel_memory_mb,
    )


def ask_password_hash() -> str:
    """Ask for a password twice on the terminal and return its argon2 hash (for parameters/users.yaml)."""
    import getpass

    from report_lib.dashboards.users import hash_password

    first = getpass.getpass("Password for the dashboard account: ")
    if getpass.getpass("Once more: ") != first:
        raise ConfigError("The two passwords differ; nothing was hashed. Run the command again.")
    return hash_password(first)
