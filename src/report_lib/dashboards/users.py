"""Dashboard accounts: who may sign in (``parameters/users.yaml``) and which stores each account may see.

Passwords are stored only as argon2id hashes (argon2-cffi, RFC 9106 low-memory profile: 64 MiB, 3 passes, 4 lanes),
in the PHC string format ``$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>``, which carries its own parameters: a
file may mix hashes made with different costs. Make one with ``python runner.py serve --hash-password`` (it asks for
the password twice and prints the hash). A plain-text password in the file is refused.

An account sees the stores it lists, the stores of the regions it lists, or every store (``stores: all``).
Accounts marked ``demo: true`` (the shipped demo logins, whose passwords are in the README) are refused when
``REPORT_ENV=prod``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from report_lib.errors import ConfigError

USERS_FILE = "users.yaml"
ALL_STORES = "all"
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory defaults
# verified when the user name is unknown, so that a wrong name costs the same time as a wrong password
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$+ayhBfDzAM4DmXNGsrPPFw$LoVkRDg343S2fFem6eKg4qHwrcKdAkpx4cNkn7jL6nE"


@dataclass(frozen=True)
class Account:
    """One dashboard login: the stores it lists, the regions it lists, or every store (``all_stores``)."""

    username: str
    password_hash: str
    display_name: str
    stores: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    all_stores: bool = False
    demo: bool = False

    def allowed_stores(self, store_regions: Mapping[str, str]) -> frozenset[str]:
        """The codes of the warehouse's stores (``store_regions``: code -> region) this account may see."""
        if self.all_stores:
            return frozenset(store_regions)
        by_region = {code for code, region in store_regions.items() if region in self.regions}
        return frozenset(code for code in store_regions if code in self.stores) | by_region


@dataclass(frozen=True)
class UserDirectory:
    """The accounts of ``parameters/users.yaml``, by user name."""

    accounts: Mapping[str, Account]
    source: str = USERS_FILE

    def get(self, username: str) -> Account | None:
        return self.accounts.get(username)

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account when the password matches its hash; None otherwise (also for unknown names)."""
        account = self.accounts.get(username)
        if not verify_password(account.password_hash if account else _DUMMY_HASH, password):
            return None
        return account

    def refuse_demo_accounts(self) -> None:
        """Raise ConfigError when a demo account (a published password) is present, as production requires."""
        demo = sorted(name for name, account in self.accounts.items() if account.demo)
        if demo:
            raise ConfigError(
                f"{self.source} has demo accounts {demo}, whose passwords are published in the README; "
                "REPORT_ENV=prod refuses them. Remove them, or give them new passwords "
                "(runner.py serve --hash-password) and delete their 'demo: true' line."
            )


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of ``password``, for ``parameters/users.yaml``."""
    if len(password) < 8:
        raise ConfigError("The password is shorter than 8 characters; choose a longer one.")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches the argon2 hash; False for a wrong password or a malformed hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def load_users(path: Path) -> UserDirectory:
    """The accounts of a users file; an absent file has none (nobody can sign in).

    Raises:
        ConfigError: the file is not valid YAML, a user name is malformed, a password is not an argon2 hash, or
            an account grants no stores.
    """
    if not path.exists():
        return UserDirectory({}, str(path))
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    users = loaded.get("users") if isinstance(loaded, dict) else None
    if not isinstance(users, dict):
        raise ConfigError(f"{path} must hold a 'users:' mapping of user names to accounts (see its header).")
    accounts = {str(name): _account(str(name), entry, path) for name, entry in users.items()}
    return UserDirectory(accounts, str(path))


def _account(username: str, entry: Any, path: Path) -> Account:
    where = f"{path}: user {username!r}"
    if not USERNAME_PATTERN.match(username):
        raise ConfigError(f"{where}: expected a name of letters, digits and . _ @ - (at most 64 characters).")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping with password and stores or regions.")
    unknown = sorted(set(entry) - {"name", "password", "stores", "regions", "demo"})
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; expected name, password, stores, regions, demo.")
    password = str(entry.get("password") or "")
    if not password.startswith("$argon2"):
        raise ConfigError(
            f"{where}: the password must be an argon2 hash ($argon2id$...), never the password itself. "
            "Make one with: python runner.py serve --hash-password"
        )
    stores, all_stores = _codes(entry.get("stores"), where, "stores")
    regions, all_regions = _codes(entry.get("regions"), where, "regions")
    if not (stores or regions or all_stores or all_regions):
        raise ConfigError(f"{where}: grants no stores; list 'stores: [S01, ...]', 'regions: [North]' or 'stores: all'.")
    return Account(
        username=username,
        password_hash=password,
        display_name=str(entry.get("name") or username),
        stores=stores,
        regions=regions,
        all_stores=all_stores or all_regions,
        demo=bool(entry.get("demo", False)),
    )


def _codes(value: Any, where: str, key: str) -> tuple[frozenset[str], bool]:
    """A list of codes from YAML (a list, one code, or 'all'); True as second item for 'all'."""
    if value is None:
        return frozenset(), False
    if value == ALL_STORES:
        return frozenset(), True
    if isinstance(value, str | int):
        return frozenset({str(value)}), False
    if isinstance(value, list):
        return frozenset(str(item) for item in value), False
    raise ConfigError(f"{where}: '{key}' must be a list of codes or 'all', found {type(value).__name__}.")
