"""Several server processes on one database: the change counter their caches watch, and their heartbeat rows.

Change counter: every audited write bumps one row's counter as the last statement of its own transaction, so
the counter moves exactly when a write commits, in commit order. A watcher that compares the counter can miss
nothing, unlike the newest audit id (a slow writer may take id 751 and commit after a faster writer's 752).
The bump holds the row lock only from the end of the transaction to its commit, so writers queue on it briefly
and never while holding it wait for anything else (no deadlock with the pack and version rows they locked).

Heartbeat rows: each process writes a row (host, pid, the address it listens on, its `--public-url`) at
start and refreshes `seen_at` every few seconds; a row not refreshed for `STALE_S` belongs to a dead process.
Behind a load balancer a signed upload URL must name the shared public address, not the process that answered
the POST, so a second process on one database refuses to start unless `--public-url` is set.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import sqlalchemy as sa
from sqlalchemy import Column, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from hearth.registry.pids import pid_alive

log = logging.getLogger("registry.processes")

HEARTBEAT_S = 2.0
STALE_S = 10.0



class ChangeCounter(SQLModel, table=True):
    """One row (id 1): how many audited writes have committed."""

    __tablename__ = "registry_changes"

    id: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    counter: int = Field(sa_column=Column(sa.BigInteger, nullable=False))


class ServerProcess(SQLModel, table=True):
    """A live (or lately dead) server process: times are epoch seconds of its host's clock."""

    __tablename__ = "registry_processes"

    id: str = Field(sa_column=Column(sa.String(64), primary_key=True))
    host: str = Field(sa_column=Column(sa.String(255), nullable=False))
    pid: int = Field(sa_column=Column(sa.Integer, nullable=False))
    listen: str = Field(sa_column=Column(sa.String(255), nullable=False, server_default=""))
    public_url: str = Field(sa_column=Column(sa.String(1000), nullable=False, server_default=""))
    started_at: float = Field(sa_column=Column(sa.Float, nullable=False))
    seen_at: float = Field(sa_column=Column(sa.Float, nullable=False))


changes = ChangeCounter.__table__
processes = ServerProcess.__table__

_BUMP = "registry_bump_changes"


def bump_on_commit(session) -> None:  # noqa: ANN001
    """Make the session's next commit bump the change counter, in that same transaction."""
    session.info[_BUMP] = True


@event.listens_for(Session, "before_commit")
def _bump(session) -> None:  # noqa: ANN001
    if session.info.pop(_BUMP, None):
        session.flush()  # the write's own statements first: the counter is the transaction's last lock
        session.execute(changes.update().where(changes.c.id == 1).values(counter=changes.c.counter + 1))


@event.listens_for(Session, "after_rollback")
def _forget(session) -> None:  # noqa: ANN001
    session.info.pop(_BUMP, None)


def change_counter(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(changes.c.counter).where(changes.c.id == 1)).scalar() or 0


def live_processes(engine: Engine, now: float | None = None) -> list[dict]:
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = conn.execute(sa.select(processes).where(processes.c.seen_at >= now - STALE_S)).mappings().all()
    return [dict(r) for r in rows]


class SecondProcessRefused(RuntimeError):
    """Another live server uses this database and the two would hand out each their own upload URLs."""


def check_may_start(engine: Engine, listen: str, public_url: str | None) -> None:
    """Refuse a second server on this database (a different address) unless every live one and this one have a
    public URL. Workers of one `--workers N` server share its host and address and are one server to a client,
    and a server restarted on its own address within STALE_S of a crash is taken for itself."""
    host = socket.gethostname()
    me = (host, listen)
    # A row of this host whose process is gone is a server killed before it could remove its row (kill -9):
    # it serves nothing, whatever its age, so a restart on another port is not a second server.
    live = [p for p in live_processes(engine) if p["host"] != host or pid_alive(int(p["pid"]))]
    others = [p for p in live if not p["listen"] or (p["host"], p["listen"]) != me]
    without = [p for p in others if not p["public_url"]]
    if others and (not public_url or without):
        first = (without or others)[0]
        raise SecondProcessRefused(
            f"another registry server (pid {first['pid']} on {first['host']}, {first['listen'] or 'address unknown'}) "
            f"uses this database, seen {time.time() - first['seen_at']:.0f}s ago: several processes need the same "
            "--public-url (the load balancer's address) on every one of them, or signed upload URLs name the "
            "process that answered; start this one with --public-url URL (and restart the others with it)")


class Heartbeat:
    """This process's row in registry_processes, refreshed in a thread and removed at a clean stop."""

    def __init__(self, engine: Engine, listen: str = "", public_url: str | None = None,
                 interval: float = HEARTBEAT_S):
        self.engine, self.interval = engine, interval
        self.id = uuid.uuid4().hex
        self.row = {"id": self.id, "host": socket.gethostname(), "pid": os.getpid(), "listen": listen,
                    "public_url": public_url or ""}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="registry-heartbeat", daemon=True)

    def start(self) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(processes.delete().where(processes.c.seen_at < now - 6 * STALE_S))  # long-dead rows
            conn.execute(processes.insert().values(**self.row, started_at=now, seen_at=now))
        self.thread.start()

    def beat(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(processes.update().where(processes.c.id == self.id).values(seen_at=time.time()))

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)
        try:
            with self.engine.begin() as conn:
                conn.execute(processes.delete().where(processes.c.id == self.id))
        except Exception:  # the row goes stale on its own
            log.warning("could not remove this process's heartbeat row", exc_info=True)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.beat()
            except Exception:
                log.warning("heartbeat failed", exc_info=True)
