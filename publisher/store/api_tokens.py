"""Store: statements for API bearer tokens (only their SHA-256 is kept) and the
Idempotency-Key answers of the API's creates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.errors import InputError
from publisher.store.api_schema import api_tokens, idempotency_keys

if TYPE_CHECKING:
    from publisher.store import Store


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    read_only: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def to_token(row: Row) -> ApiToken:
    data = row._mapping
    return ApiToken(id=data["id"], name=data["name"], read_only=bool(data["read_only"]),
                    created_at=data["created_at"], last_used_at=data["last_used_at"],
                    revoked_at=data["revoked_at"])


class ApiTokenStore:
    def __init__(self, store: Store):
        self.store = store

    def add(self, name: str, token_hash: str, read_only: bool, now: datetime) -> ApiToken:
        try:
            with self.store.writing() as conn:
                new_id = conn.execute(insert(api_tokens).values(
                    name=name, token_hash=token_hash, read_only=read_only, created_at=now,
                ).returning(api_tokens.c.id)).scalar_one()
        except IntegrityError as exc:
            raise InputError(name, "an API token with this name exists already; revoke it "
                             "or choose another name") from exc
        return self.by_name(name) or ApiToken(new_id, name, read_only, now, None, None)

    def by_name(self, name: str) -> ApiToken | None:
        with self.store.reading() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).first()
        return to_token(row) if row else None

    def by_hash(self, token_hash: str) -> ApiToken | None:
        with self.store.reading() as conn:
            row = conn.execute(select(api_tokens)
                               .where(api_tokens.c.token_hash == token_hash)).first()
        return to_token(row) if row else None

    def all(self) -> list[ApiToken]:
        with self.store.reading() as conn:
            return [to_token(row) for row in
                    conn.execute(select(api_tokens).order_by(api_tokens.c.id))]

    def revoke(self, name: str, now: datetime) -> bool:
        """Revoke; a revoked token's row stays (list shows when), its hash no longer
        authenticates. False if no live token has that name."""
        with self.store.writing() as conn:
            return conn.execute(update(api_tokens).where(
                api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)).rowcount > 0

    def used(self, token_id: int, now: datetime) -> None:
        with self.store.writing() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == token_id)
                         .values(last_used_at=now))

    # --- Idempotency-Key -------------------------------------------------------------
    def claim_key(self, token_id: int, key: str, request_hash: str,
                  now: datetime) -> dict | None:
        """None if this key is new (and now ours to answer); otherwise the stored row:
        its request hash, and its status and body (None while the first is in flight)."""
        try:
            with self.store.writing() as conn:
                conn.execute(insert(idempotency_keys).values(
                    token_id=token_id, key=key, request_hash=request_hash, created_at=now))
            return None
        except IntegrityError:
            with self.store.reading() as conn:
                row = conn.execute(select(idempotency_keys).where(
                    idempotency_keys.c.token_id == token_id,
                    idempotency_keys.c.key == key)).first()
            return dict(row._mapping) if row else None

    def answer_key(self, token_id: int, key: str, status: int, body: str) -> None:
        with self.store.writing() as conn:
            conn.execute(update(idempotency_keys).where(
                idempotency_keys.c.token_id == token_id, idempotency_keys.c.key == key)
                .values(status=status, body=body))

    def release_key(self, token_id: int, key: str) -> None:
        """The first request failed unexpectedly: let a retry run it again."""
        with self.store.writing() as conn:
            conn.execute(delete(idempotency_keys).where(
                idempotency_keys.c.token_id == token_id, idempotency_keys.c.key == key))

    def prune_keys(self, before: datetime) -> int:
        with self.store.writing() as conn:
            return conn.execute(delete(idempotency_keys)
                                .where(idempotency_keys.c.created_at < before)).rowcount
