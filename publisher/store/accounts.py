"""Store: the console's operator accounts, their sessions, failed logins and the audit log.

A session row holds only the sha256 of the cookie's random token, so whoever reads the
database (or a backup) cannot open a session. Changing a password deletes every session
of that account in the same transaction. Failed logins are rows with a time, so the
limit holds across restarts and processes, and is counted with the app's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.errors import AddressError
from publisher.store.schema import admin_accounts, admin_audit, admin_login_failures, admin_sessions

if TYPE_CHECKING:
    from publisher.store import Store

ROLES = ("owner", "editor")


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    password_hash: str
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class Session:
    id: int
    account: Account
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str


class AccountStore:
    def __init__(self, store: Store):
        self.store = store

    # --- accounts -------------------------------------------------------------------
    def add(self, email: str, role: str, password_hash: str, now: datetime) -> Account:
        if role not in ROLES:
            raise AddressError(f"role {role!r} is not one of {', '.join(ROLES)}")
        try:
            with self.store.writing() as conn:
                conn.execute(insert(admin_accounts).values(
                    email=email, role=role, password_hash=password_hash, created_at=now,
                    updated_at=now))
        except IntegrityError as exc:
            raise AddressError(f"{email} already has a console account") from exc
        return self.by_email(email)

    def by_email(self, email: str) -> Account | None:
        with self.store.reading() as conn:
            row = conn.execute(select(admin_accounts)
                               .where(admin_accounts.c.email == email)).first()
        return Account(**row._mapping) if row else None

    def by_id(self, account_id: int) -> Account | None:
        with self.store.reading() as conn:
            row = conn.execute(select(admin_accounts)
                               .where(admin_accounts.c.id == account_id)).first()
        return Account(**row._mapping) if row else None

    def all(self) -> list[Account]:
        with self.store.reading() as conn:
            rows = conn.execute(select(admin_accounts).order_by(admin_accounts.c.email))
            return [Account(**row._mapping) for row in rows]

    def remove(self, account_id: int) -> bool:
        with self.store.writing() as conn:
            conn.execute(delete(admin_sessions).where(admin_sessions.c.account_id == account_id))
            return bool(conn.execute(delete(admin_accounts)
                                     .where(admin_accounts.c.id == account_id)).rowcount)

    def set_password(self, account_id: int, password_hash: str, now: datetime) -> int:
        """New password; every session of the account ends. Returns how many ended."""
        with self.store.writing() as conn:
            conn.execute(update(admin_accounts).where(admin_accounts.c.id == account_id)
                         .values(password_hash=password_hash, updated_at=now))
            return conn.execute(delete(admin_sessions)
                                .where(admin_sessions.c.account_id == account_id)).rowcount

    def rehash(self, account_id: int, password_hash: str) -> None:
        """The same password under newer argon2 parameters; sessions stay."""
        with self.store.writing() as conn:
            conn.execute(update(admin_accounts).where(admin_accounts.c.id == account_id)
                         .values(password_hash=password_hash))

    def owner_count(self) -> int:
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(admin_accounts)
                                .where(admin_accounts.c.role == "owner")).scalar_one()

    # --- sessions -------------------------------------------------------------------
    def start_session(self, account_id: int, token_hash: str, now: datetime,
                      expires_at: datetime, client: str) -> None:
        with self.store.writing() as conn:
            conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= now))
            conn.execute(insert(admin_sessions).values(
                token_hash=token_hash, account_id=account_id, created_at=now,
                expires_at=expires_at, client=client[:100]))
            conn.execute(update(admin_accounts).where(admin_accounts.c.id == account_id)
                         .values(last_login_at=now))

    def session(self, token_hash: str, now: datetime) -> Session | None:
        """The live session with this token hash, or None (unknown, ended or expired)."""
        query = (select(admin_sessions.c.id, admin_sessions.c.created_at,
                        admin_sessions.c.expires_at, admin_accounts)
                 .join(admin_accounts, admin_accounts.c.id == admin_sessions.c.account_id)
                 .where(admin_sessions.c.token_hash == token_hash,
                        admin_sessions.c.expires_at > now))
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        session_id, created_at, expires_at, *account = row  # columns in select order
        return Session(session_id, Account(*account), created_at, expires_at)

    def end_session(self, token_hash: str) -> None:
        with self.store.writing() as conn:
            conn.execute(delete(admin_sessions).where(admin_sessions.c.token_hash == token_hash))

    def session_count(self, account_id: int, now: datetime) -> int:
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(admin_sessions).where(
                admin_sessions.c.account_id == account_id,
                admin_sessions.c.expires_at > now)).scalar_one()

    # --- failed logins --------------------------------------------------------------
    def record_failure(self, email: str, client: str, now: datetime, keep_after: datetime) -> None:
        with self.store.writing() as conn:
            conn.execute(delete(admin_login_failures)
                         .where(admin_login_failures.c.at < keep_after))
            conn.execute(insert(admin_login_failures).values(email=email[:320],
                                                             client=client[:100], at=now))

    def failures_since(self, email: str, client: str, since: datetime) -> tuple[int, int]:
        """(failures for this address, failures from this client) since `since`."""
        def count(column, value):
            return select(func.count()).select_from(admin_login_failures).where(
                column == value, admin_login_failures.c.at > since).scalar_subquery()

        with self.store.reading() as conn:
            row = conn.execute(select(count(admin_login_failures.c.email, email),
                                      count(admin_login_failures.c.client, client))).one()
        return row[0], row[1]

    # --- the audit log --------------------------------------------------------------
    def audit(self, actor: str, action: str, now: datetime, target: str = "",
              detail: str = "") -> None:
        with self.store.writing() as conn:
            conn.execute(insert(admin_audit).values(at=now, actor=actor, action=action,
                                                    target=target, detail=detail[:2000]))

    def audit_page(self, before_id: int | None, limit: int,
                   target: str | None = None) -> list[AuditEntry]:
        """Newest first, `limit` entries older than `before_id`; only `target`'s if given."""
        query = select(admin_audit).order_by(admin_audit.c.id.desc()).limit(limit)
        if before_id:
            query = query.where(admin_audit.c.id < before_id)
        if target is not None:
            query = query.where(admin_audit.c.target == target)
        with self.store.reading() as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]
