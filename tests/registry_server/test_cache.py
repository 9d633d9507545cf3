"""The read cache: writes through the server are seen at once, writes elsewhere within the audit-watch interval,
and installs answered from the cache are still counted."""

from __future__ import annotations

import time
from pathlib import Path

from hearth.registry_server.admin import services as admin
from hearth.registry_server.cache import ResponseCache, _Entry
from tests.harness.packs import make_pack
from tests.registry_server.helpers import Hub, unique


def test_write_elsewhere_shows_within_the_watch_interval_and_cached_installs_count(hub: Hub, tmp_path: Path):
    if hub.backend != "sqlite":
        return  # cache logic does not depend on the backend
    pub, token = hub.new_publisher()
    name = unique("cached-")
    hub.publish_dir(make_pack(tmp_path, name, "1.0.0", pub), token)
    for _ in range(5):
        assert hub.http.get(f"/nodes/{name}/install").status_code == 200
    assert hub.http.get(f"/nodes/{name}").status_code == 200
    with hub.session() as s:  # as `comfy registry admin ban` would, straight into the database
        admin.ban(s, name, "test")
    started = time.monotonic()
    while hub.http.get(f"/nodes/{name}").status_code != 404:
        assert time.monotonic() - started < 5, "a ban made outside the server never showed"
        time.sleep(0.05)
    with hub.session() as s:
        admin.unban(s, name, "test")
    started = time.monotonic()
    while hub.http.get(f"/nodes/{name}").status_code != 200:
        assert time.monotonic() - started < 5, "an unban made outside the server never showed"
        time.sleep(0.05)
    # Counts are written by the background job without an audit row, so the database is the place to look.
    from hearth.registry_server.packs.models import Pack

    deadline = time.monotonic() + 10
    while True:
        with hub.session() as s:
            if s.get(Pack, name).downloads >= 5:
                break
        assert time.monotonic() < deadline, "installs answered from the cache were not counted"
        time.sleep(0.2)


def test_a_response_computed_before_a_write_is_not_stored_after_it():
    cache = ResponseCache(ttl=60)
    generation = cache.generation
    cache.clear()  # a write lands while the read is being computed
    cache.put(("GET", "/nodes/x"), _Entry(time.monotonic() + 60, 200, [], b"old", generation))
    assert cache.get(("GET", "/nodes/x")) is None
    cache.put(("GET", "/nodes/x"), _Entry(time.monotonic() + 60, 200, [], b"new", cache.generation))
    assert cache.get(("GET", "/nodes/x")).body == b"new"


def test_entries_expire_and_the_cache_is_bounded():
    cache = ResponseCache(ttl=60, max_entries=3)
    for i in range(5):
        cache.put(("GET", str(i)), _Entry(time.monotonic() + 60, 200, [], b"", cache.generation))
    assert [cache.get(("GET", str(i))) is not None for i in range(5)] == [False, False, True, True, True]
    cache.put(("GET", "old"), _Entry(time.monotonic() - 1, 200, [], b"", cache.generation))
    assert cache.get(("GET", "old")) is None
