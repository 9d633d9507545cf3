"""Fixtures: real registry processes on loopback, against SQLite, PostgreSQL and S3 (moto)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hearth.registry_server.settings import Settings
from tests.registry_server.helpers import Hub, unique
from tests.registry_server.servers import MotoS3, PostgresCluster, RegistryProcess

BACKENDS = ["sqlite", "postgres", "s3"]
# Small enough that the "oversized upload" test needs only a few hundred kilobytes.
TEST_UPLOAD_LIMIT = 256 * 1024


def settings_for(data_dir: Path, **overrides) -> Settings:
    s = Settings(data_dir=data_dir, max_upload_bytes=TEST_UPLOAD_LIMIT, verify_poll_s=0.2, gc_grace_s=600)
    for k, v in overrides.items():
        setattr(s, k, v)
    return s


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    reason = cluster.available
    if reason:
        pytest.skip(reason)
    try:
        cluster.start()
    except Exception as exc:  # noqa: BLE001 - report why, then skip this backend only
        cluster.stop()
        pytest.skip(f"could not start a PostgreSQL cluster: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[MotoS3]:
    moto = MotoS3()
    try:
        moto.start()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"could not start moto's S3 server (pip install 'moto[server]'): {exc}")
    saved = {k: os.environ.get(k) for k in moto.env}
    os.environ.update(moto.env)  # the in-process admin side reaches the same bucket
    yield moto
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    moto.stop()


def _backend_settings(request: pytest.FixtureRequest, kind: str, data_dir: Path, **overrides) -> tuple[Settings, dict]:
    settings = settings_for(data_dir, **overrides)
    env: dict[str, str] = {}
    if kind == "postgres":
        pg: PostgresCluster = request.getfixturevalue("postgres")
        settings.db_url = pg.create_database(unique("hearth_"))
    elif kind == "s3":
        moto: MotoS3 = request.getfixturevalue("s3")
        bucket = unique("bucket-")
        moto.create_bucket(bucket)
        settings.storage_url = f"s3://{bucket}/registry"
        env = moto.env
    return settings, env


@pytest.fixture(scope="session", params=BACKENDS)
def hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    """A registry shared by the tests of one backend (tests use unique publisher and pack names)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"hearth-reg-{request.param}-"))
    settings, env = _backend_settings(request, request.param, data_dir)
    server = RegistryProcess(settings, env).start()
    h = Hub(server.url, settings)
    h.backend = request.param
    yield h
    h.close()
    server.stop()


@pytest.fixture
def make_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., tuple[RegistryProcess, Hub]]]:
    """Start dedicated registries with special settings (private, mirror, crash tests); SQLite unless asked."""
    started: list[tuple[RegistryProcess, Hub]] = []

    def start(kind: str = "sqlite", data_dir: Path | None = None, **overrides) -> tuple[RegistryProcess, Hub]:
        d = data_dir or tmp_path / unique("srv")
        settings, env = _backend_settings(request, kind, d, **overrides)
        server = RegistryProcess(settings, env).start()
        h = Hub(server.url, settings)
        started.append((server, h))
        return server, h

    yield start
    for server, h in started:
        h.close()
        server.stop()


def _shared(request: pytest.FixtureRequest, label: str, **overrides) -> tuple[RegistryProcess, Hub]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"hearth-reg-{label}-"))
    settings, env = _backend_settings(request, "sqlite", data_dir, **overrides)
    server = RegistryProcess(settings, env).start()
    return server, Hub(server.url, settings)


@pytest.fixture(scope="session")
def private_hub(request: pytest.FixtureRequest) -> Iterator[Hub]:
    """One private-mode registry (SQLite) shared by the private-mode tests."""
    server, h = _shared(request, "private", private=True)
    yield h
    h.close()
    server.stop()


@pytest.fixture(scope="module")
def mirror_pair(request: pytest.FixtureRequest) -> Iterator[tuple[RegistryProcess, Hub, Hub]]:
    """An upstream registry and a mirror of it; a test that stops the upstream must start it again."""
    upstream_server, upstream = _shared(request, "upstream")
    mirror_server, mirror = _shared(request, "mirror", upstream=upstream.url)
    yield upstream_server, upstream, mirror
    for server, h in ((mirror_server, mirror), (upstream_server, upstream)):
        h.close()
        server.stop()
