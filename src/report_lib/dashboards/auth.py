"""Sign-in for the dashboards: jupyter-server's identity provider interface with the accounts of users.yaml.

- ``DashboardIdentityProvider``: no token; the login form checks a user name and password against the argon2
  hashes of ``parameters/users.yaml`` (re-read when the file changes, so removing an account signs it out at its
  next request). The session is a signed cookie (``cookie_secret``; HttpOnly, SameSite=Lax, Secure under HTTPS
  or when ``secure_cookie`` is set) that expires after ``session_hours``.
- ``DashboardLoginHandler``: the branded login page; password checks run in a worker thread (argon2 takes ~0.1-1 s
  by design) and failed attempts are throttled per user name and address.
- ``KernelOwnerAuthorizer``: a kernel's websocket and REST endpoints are open only to the user whose page started it.
- ``OwnKernelShutdownHandler``: Voila's page-unload shutdown endpoint, limited to the caller's own kernels.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from jupyter_server.auth import authorizer, identity, login
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import User
from jupyter_server.base import handlers
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web
from traitlets import Float, Integer, Unicode, default

from report_lib.dashboards.users import UserDirectory, load_users

log = logging.getLogger(__name__)

# jupyter-server's classes are partly typed; subclassing them as Any keeps mypy --strict meaningful for our code
_IdentityProvider: Any = identity.IdentityProvider
_LoginFormHandler: Any = login.LoginFormHandler
_JupyterHandler: Any = handlers.JupyterHandler
_APIHandler: Any = handlers.APIHandler
_Authorizer: Any = authorizer.Authorizer

MAX_FAILURES = 5
LOCKOUT_SECONDS = 60.0
MAX_TRACKED = 10_000


class DashboardIdentityProvider(_IdentityProvider):  # type: ignore[misc]  # an untyped jupyter-server base
    """Users and password hashes from ``users_file``; the identity is the account's user name."""

    users_file = Unicode("", config=True, help="Path of the users file (parameters/users.yaml).")
    session_hours = Float(12.0, config=True, help="Hours a sign-in lasts.")
    max_failures = Integer(MAX_FAILURES, config=True, help="Failed sign-ins before a pause.")

    @default("token")
    def _no_token(self) -> str:
        return ""

    @default("login_handler_class")
    def _login_handler(self) -> type[web.RequestHandler]:
        return DashboardLoginHandler

    @default("logout_handler_class")
    def _logout_handler(self) -> type[web.RequestHandler]:
        return DashboardLogoutHandler

    @default("cookie_options")
    def _cookie_options(self) -> dict[str, Any]:
        return {"httponly": True, "samesite": "Lax", "expires_days": self.session_hours / 24}

    @default("get_secure_cookie_kwargs")
    def _cookie_age(self) -> dict[str, Any]:
        return {"max_age_days": self.session_hours / 24}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._directory: UserDirectory | None = None
        self._loaded_mtime = -1.0
        self._failures: dict[tuple[str, str], list[float]] = {}

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return True

    def directory(self) -> UserDirectory:
        """The accounts, re-read when the file changed since the last read."""
        path = Path(self.users_file)
        mtime = path.stat().st_mtime if path.exists() else 0.0
        if self._directory is None or mtime != self._loaded_mtime:
            self._directory = load_users(path)
            self._loaded_mtime = mtime
        return self._directory

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        user: User | None = await super()._get_user(handler)
        if user is not None and self.directory().get(user.username) is None:
            log.warning("refusing the session of %r: no longer in %s", user.username, self.users_file)
            self.clear_login_cookie(handler)
            return None
        return user

    def user_for(self, username: str, password: str) -> User | None:
        """The User when the password is right (blocking: argon2 is slow on purpose)."""
        account = self.directory().authenticate(username, password)
        if account is None:
            return None
        return User(username=account.username, name=account.display_name, display_name=account.display_name)

    def locked_out(self, username: str, address: str) -> bool:
        recent = [t for t in self._failures.get((username, address), []) if time.monotonic() - t < LOCKOUT_SECONDS]
        self._failures[(username, address)] = recent
        return len(recent) >= self.max_failures

    def record_failure(self, username: str, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) > MAX_TRACKED:  # forget stale entries: guessed names must not grow memory forever
            self._failures = {key: times for key, times in self._failures.items() if now - times[-1] < LOCKOUT_SECONDS}
        self._failures.setdefault((username, address), []).append(now)

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        """jupyter-server's synchronous hook; our login handler uses ``user_for`` in a thread instead."""
        return self.user_for(handler.get_argument("username", ""), handler.get_argument("password", ""))


class DashboardLoginHandler(_LoginFormHandler):  # type: ignore[misc]  # an untyped jupyter-server base
    """The login page of our Voila template; checks passwords off the event loop."""

    def _render(self, message: dict[str, str] | None = None) -> None:
        template = self.settings["voila_jinja2_env"].get_template("login.html")
        self.write(
            template.render(
                base_url=self.base_url,
                next=self.get_argument("next", default=self.base_url),
                message=message,
                username=self.get_argument("username", default=""),
                xsrf_form_html=self.xsrf_form_html,
            )
        )

    @allow_unauthenticated
    async def post(self) -> None:
        provider: DashboardIdentityProvider = self.identity_provider
        username = self.get_argument("username", default="").strip()
        password = self.get_argument("password", default="")
        address = str(self.request.remote_ip)
        if provider.locked_out(username, address):
            self.set_status(429)
            self._render(message={"error": "Too many failed sign-ins. Wait a minute, then try again."})
            return
        user = await asyncio.get_running_loop().run_in_executor(None, provider.user_for, username, password)
        if user is None:
            provider.record_failure(username, address)
            log.warning("failed dashboard sign-in for %r from %s", username, address)
            self.set_status(401)
            self._render(message={"error": "Wrong user name or password."})
            return
        log.info("dashboard sign-in: %s from %s", user.username, address)
        provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))


class DashboardLogoutHandler(_JupyterHandler):  # type: ignore[misc]  # an untyped jupyter-server base
    """Sign out: clear the cookie, stop the user's dashboard kernels, back to the login page."""

    @allow_unauthenticated
    async def get(self) -> None:
        user = self.current_user
        if user is not None:
            manager = self.kernel_manager
            for kernel_id in getattr(manager, "kernels_of", lambda _name: [])(user.username):
                await ensure_async(manager.shutdown_kernel(kernel_id, now=True))
        self.identity_provider.clear_login_cookie(self)
        self.redirect(url_path_join(self.base_url, "login"))


class KernelOwnerAuthorizer(_Authorizer):  # type: ignore[misc]  # an untyped jupyter-server base
    """Kernels (websocket, REST) only for their owner; every other resource for any signed-in user."""

    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        if resource != "kernels":
            return True
        kernel_id = getattr(handler, "kernel_id", None) or handler.path_kwargs.get("kernel_id")
        owner_of = getattr(handler.kernel_manager, "owner_of", None)
        allowed = bool(kernel_id and owner_of and owner_of(kernel_id) == user.username)
        if not allowed:
            log.warning("refused %s on kernel %s to %s: not the owner", action, kernel_id, user.username)
        return allowed


class OwnKernelShutdownHandler(_APIHandler):  # type: ignore[misc]  # an untyped jupyter-server base
    """POST /voila/api/shutdown/<kernel_id>, sent by a closing page: only the owner may shut its kernel down."""

    @web.authenticated
    async def post(self, kernel_id: str) -> None:
        owner_of = getattr(self.kernel_manager, "owner_of", None)
        if owner_of is None or owner_of(kernel_id) != self.current_user.username:
            raise web.HTTPError(403)
        await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id))
        self.set_status(204)
        self.finish()
