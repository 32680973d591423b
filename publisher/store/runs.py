"""Store: statements for the runs table, the record of each stage's passes."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update

from publisher.store.schema import runs

if TYPE_CHECKING:
    from publisher.store import Store

NODE = f"{socket.gethostname()}:{os.getpid()}"


class RunStore:
    def __init__(self, store: Store):
        self.store = store

    def start(self, stage: str, now: datetime) -> int:
        with self.store.writing() as conn:
            return conn.execute(insert(runs).values(stage=stage, node=NODE, started_at=now)
                                .returning(runs.c.id)).scalar_one()

    def finish(self, run_id: int, now: datetime, ok: bool, summary: dict) -> None:
        with self.store.writing() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                finished_at=now, ok=ok, summary=json.dumps(summary, default=str)))

    def last_of_each_stage(self) -> list[dict]:
        latest = (select(runs.c.stage, func.max(runs.c.id).label("id"))
                  .group_by(runs.c.stage).subquery())
        query = select(runs).join(latest, runs.c.id == latest.c.id).order_by(runs.c.stage)
        with self.store.reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
