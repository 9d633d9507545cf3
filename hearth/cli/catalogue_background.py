"""Rebuilding a stale node catalogue in a detached background process, one build at a time per catalogue.

A command whose uncached path needs only the nodes it touches (``comfy run --check``) must not make its user wait
for a rebuild that reads every node's ``INPUT_TYPES`` (and so imports torch). When it finds the catalogue missing
or stale it validates as ``HEARTH_CATALOGUE=off`` would and calls :func:`start_build`, which starts ``comfy nodes
--build-catalogue LOCK`` detached (its own session, no terminal, nothing on the user's output) at low priority, so
the next command finds the catalogue fresh.

One build at a time: the lock file ``LOCK`` beside the catalogue is created exclusively before the build starts
and holds its process id; the build removes it when done. A lock whose process is gone, or that is older than
:data:`LOCK_STALE_S` (a build killed with the machine), no longer counts.

``HEARTH_CATALOGUE_BACKGROUND=off`` never starts a build (the command then simply runs uncached); ``on`` always
may. Unset, builds start except inside a pytest test: a detached process would outlive the test and write into
its temporary folders, so a test that wants one asks with ``on``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hearth.core.catalogue_key import Fingerprint, cache_folder
from hearth.registry.pids import pid_alive

log = logging.getLogger("hearth.catalogue")

ENV_BACKGROUND = "HEARTH_CATALOGUE_BACKGROUND"
LOCK_STALE_S = 600.0  # a full build takes seconds; ten minutes means its process died without cleaning up
BUILD_NICENESS = 10  # the build yields the CPU to whatever the user runs next


def background_builds_allowed() -> bool:
    """Whether a command may start a detached rebuild (see the module's docstring for the setting)."""
    value = os.environ.get(ENV_BACKGROUND, "").strip().lower()
    if value in ("on", "1", "yes", "true"):
        return True
    if value in ("off", "0", "no", "false"):
        return False
    return "PYTEST_CURRENT_TEST" not in os.environ


def lock_path(key: Fingerprint) -> Path:
    """The lock file of the build of the catalogue ``key`` names (beside that catalogue's file)."""
    return cache_folder() / "catalogue" / f"{key.identity}.building"


def start_build(key: Fingerprint, plugin_args: Sequence[str]) -> bool:
    """Start ``comfy nodes --build-catalogue`` detached for the catalogue ``key`` names, unless a build of it is
    already under way or background builds are off; whether one was started. ``plugin_args``: the options that
    chose the command's plugins (``--custom-nodes``, ``--env``, ``--isolation``), so the build reads the same ones.
    Never raises: a build that cannot start leaves the command as it was, uncached."""
    if not background_builds_allowed():
        return False
    lock = lock_path(key)
    try:
        if not _claim(lock):
            return False
    except OSError as exc:
        log.info("cannot claim the catalogue build lock %s: %s", lock, exc)
        return False
    command = [sys.executable, "-m", "hearth.cli.main", "nodes", "--build-catalogue", str(lock), *plugin_args]
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError as exc:
        log.info("cannot start the catalogue build: %s", exc)
        lock.unlink(missing_ok=True)
        return False
    try:
        lock.write_text(str(process.pid), encoding="utf-8")
    except OSError:  # the build still removes the lock; without a pid it counts until it is old
        pass
    return True


def build_niceness() -> None:
    """Lower this process's priority, as the background build does before it starts reading nodes."""
    try:
        os.nice(BUILD_NICENESS)
    except (AttributeError, OSError):  # no nice() on Windows; a refused one changes nothing that matters
        pass


def release(lock: Path) -> None:
    """Remove the build's lock file (the build calls this when it is done, built or not)."""
    try:
        lock.unlink(missing_ok=True)
    except OSError as exc:
        log.info("cannot remove the catalogue build lock %s: %s", lock, exc)


def _claim(lock: Path) -> bool:
    """Create ``lock`` exclusively; a lock left by a build that is gone is replaced. Whether this caller has it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            if not _abandoned(lock):
                return False
            lock.unlink(missing_ok=True)  # then try once more: another command may claim it first
    return False


def _abandoned(lock: Path) -> bool:
    """Whether an existing lock no longer stands for a running build: too old, or its process is gone."""
    try:
        age = time.time() - lock.stat().st_mtime
        text = lock.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return True
    if age > LOCK_STALE_S:
        return True
    if not text.isdigit():
        return False  # claimed a moment ago; the pid follows once the build has started
    return not _alive(int(text))


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # os.kill there would end the process, not probe it: the lock's age decides
    return pid_alive(pid)
