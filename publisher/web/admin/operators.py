"""Console: operator accounts, the rules the CLI (`publisher admin ...`) and the console's
accounts page share: who may have an account, how passwords are kept and checked.

Passwords are hashed with argon2id (argon2-cffi's PasswordHasher, whose defaults are
RFC 9106's second recommended profile); a hash made under older parameters is replaced
at the next successful login.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from publisher.addresses import normalize_address
from publisher.errors import AddressError
from publisher.store import Store
from publisher.store.accounts import ROLES, Account

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; this bounds the work a login form can ask
hasher = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Checked against when the address has no account, so a login takes as long either
    way. Made at the first login, not at import: hashing costs about a second of CPU,
    which every `publisher` command would pay otherwise."""
    return hasher.hash("no account has this password")


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AddressError(f"the password is too short: use at least {MIN_PASSWORD} "
                           "characters")
    if len(password) > MAX_PASSWORD:
        raise AddressError(f"the password is too long: at most {MAX_PASSWORD} characters")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AddressError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def add_operator(store: Store, address: str, role: str, password: str,
                 now: datetime) -> Account:
    email = normalize_address(address)
    check_role(role)
    return store.accounts.add(email, role, hasher.hash(check_password(password)), now)


def find_operator(store: Store, address: str) -> Account:
    email = normalize_address(address)
    account = store.accounts.by_email(email)
    if account is None:
        raise AddressError(f"{email} has no console account")
    return account


def change_password(store: Store, account: Account, password: str, now: datetime) -> int:
    """Set a new password; every session of the account ends. Returns how many."""
    return store.accounts.set_password(account.id, hasher.hash(check_password(password)), now)


def remove_operator(store: Store, account: Account) -> None:
    """Remove an account (its sessions end with it); the last owner stays."""
    if account.role == "owner" and store.accounts.owner_count() <= 1:
        raise AddressError(f"{account.email} is the last owner: add another owner first")
    store.accounts.remove(account.id)


def authenticate(store: Store, address: str, password: str) -> Account | None:
    """The account if the password is right, else None; the same work either way."""
    try:
        email = normalize_address(address)
    except AddressError:
        email = ""
    account = store.accounts.by_email(email) if email else None
    if len(password) > MAX_PASSWORD:
        return None
    try:
        hasher.verify(account.password_hash if account else dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if account is None:
        return None
    if hasher.check_needs_rehash(account.password_hash):
        store.accounts.rehash(account.id, hasher.hash(password))
    return account
