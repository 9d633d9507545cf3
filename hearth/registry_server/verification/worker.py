"""The verification job: a background thread per server that claims pending versions and verifies them."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import update
from sqlmodel import Session

log = logging.getLogger("hearth.registry.verify")


class VerificationWorker:
    """Wakes on each upload (or every poll interval, to pick up work from other processes and crashed claims)."""

    def __init__(self, server):  # noqa: ANN001
        self.server = server
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(max(1, self.server.settings.verify_workers)):
            t = threading.Thread(target=self._loop, name=f"verifier-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        self.server.wake_verifier.set()
        for t in self.threads:
            t.join(timeout=10)
        self.flush_downloads()

    def run_pending(self) -> int:
        """Verify everything claimable now; returns how many versions were processed."""
        from hearth.registry_server.verification.services import claim_next, postpone_claim, verify_version

        done = 0
        while not self.stop_event.is_set():
            with Session(self.server.engine) as session:
                vid = claim_next(session, self.server.settings.verify_claim_timeout_s)
            if vid is None:
                return done
            try:
                verify_version(self.server, vid)
            except Exception:  # keep the worker alive; another try happens later, by whichever process
                log.exception("verification of version %s failed", vid)
                with Session(self.server.engine) as session:
                    postpone_claim(session, vid, self.server.settings.verify_claim_timeout_s)
            done += 1
        return done

    def flush_downloads(self) -> None:
        from hearth.registry_server.packs.models import Pack

        reg = self.server
        with reg.downloads_lock:
            counts, reg.downloads = dict(reg.downloads), type(reg.downloads)()
        if not counts:
            return
        with Session(reg.engine) as session:
            for key, n in counts.items():
                session.execute(update(Pack).where(Pack.key == key).values(downloads=Pack.downloads + n))
            session.commit()

    def _loop(self) -> None:
        poll = self.server.settings.verify_poll_s
        while not self.stop_event.is_set():
            self.server.wake_verifier.clear()
            try:
                self.run_pending()
                self.flush_downloads()
            except Exception:
                log.exception("verification loop error")
            self.server.wake_verifier.wait(poll)
