"""Real pack hosts for the host tests: a small pack (``pack_source.SOURCE``) written to a temporary folder, exposed
read-only to each host, and hosts that are always closed after the test."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hearth.sandbox.host import HostConfig, HostLimits, PackHost, isolation_available
from tests.sandbox.host.pack_source import SOURCE

MODULE = "hosttestpack"


@pytest.fixture(scope="session")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ok, reason = isolation_available()
    if not ok:
        pytest.skip(f"this machine cannot make pack hosts: {reason}")
    folder = tmp_path_factory.mktemp("hostpack")
    (folder / f"{MODULE}.py").write_text(SOURCE)
    return folder


@pytest.fixture
def make_host(pack_dir: Path) -> Iterator[Callable[..., PackHost]]:
    hosts: list[PackHost] = []

    def make(name: str = "hosttest", *, args: dict | None = None, limits: HostLimits = HostLimits(),
             exports=None, readable: tuple[str, ...] = (), writable: tuple[str, ...] = (),
             network: bool = False) -> PackHost:
        config = HostConfig(name=name, entry=f"{MODULE}:load", args=args or {},
                            readable=(str(pack_dir), *readable), writable=writable, sys_path=(str(pack_dir),),
                            network=network, limits=limits)
        host = PackHost(config, exports=exports)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.close()
    gc.collect()


@pytest.fixture(scope="module")
def shared_host(pack_dir: Path) -> Iterator[PackHost]:
    """One host for the tests that only call nodes (starting one costs a tenth of a second)."""
    host = PackHost(HostConfig(name="shared", entry=f"{MODULE}:load", readable=(str(pack_dir),),
                               sys_path=(str(pack_dir),)))
    yield host
    host.close()

