"""Every mistake a client can make gets a clear 4xx JSON error naming the thing at fault (all backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from hearth.registry.archive import build_archive
from hearth.registry_server.db import utcnow
from hearth.registry_server.publishing.models import UploadTicket
from tests.harness.packs import make_pack, pyproject
from tests.registry_server.conftest import TEST_UPLOAD_LIMIT
from tests.registry_server.helpers import Hub, unique, zip_bytes


def _err(r) -> dict:  # noqa: ANN001
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert body["error"]["message"] and body["message"] == body["error"]["message"]
    return body["error"]


def test_unknown_publisher(hub: Hub):
    _, token = hub.new_publisher()
    r = hub.reserve("nobody-here", token, "x", "1.0.0")
    assert r.status_code == 404 and _err(r)["code"] == "publisher_not_found"
    assert "nobody-here" in r.json()["message"]


def test_token_problems(hub: Hub):
    pub, token = hub.new_publisher()
    other, _ = hub.new_publisher()
    name = unique("tok-")
    cases = {
        None: (401, "token_required"),
        "hth_wrong": (401, "invalid_token"),
        hub.token(pub, "read"): (403, "insufficient_scope"),
    }
    for secret, (status, code) in cases.items():
        r = hub.reserve(pub, secret, name, "1.0.0")
        assert (r.status_code, _err(r)["code"]) == (status, code)
    r = hub.reserve(other, token, name, "1.0.0")
    assert (r.status_code, _err(r)["code"]) == (403, "wrong_publisher")

    expired = hub.token(pub, "publish", expires_days=1)
    from hearth.registry_server.accounts.models import Token
    from hearth.registry_server.accounts.services import hash_token, revoke_token

    with hub.session() as s:
        s.execute(update(Token).where(Token.token_hash == hash_token(expired))
                  .values(expires_at=utcnow().replace(year=2000)))
        s.commit()
    r = hub.reserve(pub, expired, name, "1.0.0")
    assert (r.status_code, _err(r)["code"]) == (401, "token_expired")

    revoked = hub.token(pub, "publish")
    with hub.session() as s:
        revoke_token(s, revoked[:12])
    r = hub.reserve(pub, revoked, name, "1.0.0")
    assert (r.status_code, _err(r)["code"]) == (401, "token_revoked")
    who = hub.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert (who["publisher"], who["scope"], who["prefix"]) == (pub, "publish", token[:12])
    assert "hth_" not in str({k: v for k, v in who.items() if k != "prefix"})
    assert hub.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {revoked}"}).status_code == 401
    # The token still works when sent as a header instead of in the body.
    r = hub.http.post(f"/publishers/{pub}/nodes/{name}/versions", json={"node_version": {"version": "1.0.0"}},
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("pack", "version", "code"), [
    ("bad name", "1.0.0", "invalid_pack_id"), ("-lead", "1.0.0", "invalid_pack_id"), ("a" * 101, "1.0.0",
                                                                                      "invalid_pack_id"),
    ("ok", "1.0", "invalid_version"), ("ok", "v1.0.0", "invalid_version"),
])
def test_bad_pack_id_or_version(hub: Hub, pack: str, version: str, code: str):
    pub, token = hub.new_publisher()
    r = hub.reserve(pub, token, pack, version)
    assert r.status_code == 422 and _err(r)["code"] == code


def test_malformed_request_body(hub: Hub):
    pub, token = hub.new_publisher()
    r = hub.http.post(f"/publishers/{pub}/nodes/x/versions", json={"personal_access_token": token})
    assert r.status_code == 422 and "node_version" in _err(r)["message"]
    r = hub.http.post(f"/publishers/{pub}/nodes/x/versions", content=b"{not json",
                      headers={"content-type": "application/json"})
    assert r.status_code == 422


def _ticket(hub: Hub, pack: str = "", version: str = "1.0.0", **extra) -> tuple[str, str, str]:
    pub, token = hub.new_publisher()
    pack = pack or unique("up-")
    r = hub.reserve(pub, token, pack, version, **extra)
    assert r.status_code == 201, r.text
    return pub, pack, r.json()["signedUrl"]


def test_malformed_manifest_in_archive(hub: Hub):
    pub, pack, url = _ticket(hub)
    bad = pyproject(pack, "1.0.0", pub).replace('version = "1.0.0"', 'version = "one"')
    r = hub.upload(url, zip_bytes({"pyproject.toml": bad, "__init__.py": ""}))
    err = _err(r)
    assert r.status_code == 422 and err["code"] == "manifest_invalid"
    assert err["detail"]["field"] == "project.version" and "pyproject.toml" in err["message"]
    r = hub.upload(url, zip_bytes({"__init__.py": ""}))
    assert _err(r)["code"] == "manifest_missing"
    r = hub.upload(url, zip_bytes({"pyproject.toml": pyproject(pack, "2.0.0", pub)}))
    assert _err(r)["code"] == "manifest_mismatch" and "project.version" in r.json()["message"]
    # Refused uploads leave the URL usable: nothing was recorded.
    r = hub.upload(url, zip_bytes({"pyproject.toml": pyproject(pack, "1.0.0", pub), "__init__.py": ""}))
    assert r.status_code == 200, r.text


def test_oversized_upload(hub: Hub):
    _, _, url = _ticket(hub)
    r = hub.upload(url, b"x" * (TEST_UPLOAD_LIMIT + 1))
    assert r.status_code == 413 and _err(r)["code"] == "upload_too_large"

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(TEST_UPLOAD_LIMIT // 65536 + 2):
            yield b"y" * 65536

    r = hub.upload(url, chunks())
    assert r.status_code == 413


def test_archive_not_matching_declared_hash(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    pack = unique("hash-")
    arc = build_archive(make_pack(tmp_path, pack, "1.0.0", pub), tmp_path / "a.zip")
    url = hub.reserve(pub, token, pack, "1.0.0", sha256="0" * 64).json()["signedUrl"]
    r = hub.upload(url, arc.path.read_bytes())
    assert r.status_code == 422 and _err(r)["code"] == "sha256_mismatch" and arc.sha256 in r.json()["message"]
    r = hub.upload(url, arc.path.read_bytes(), **{"X-Hearth-Sha256": "f" * 64})
    assert _err(r)["code"] == "sha256_mismatch"
    r = hub.upload(url, arc.path.read_bytes(), **{"X-Hearth-Sha256": arc.sha256})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("files", "links", "rule"), [
    ({"../evil.py": "x"}, None, "escapes"),
    ({"/etc/evil": "x"}, None, "absolute"),
    ({"ok/../../evil.py": "x"}, None, "escapes"),
    ({}, {"link": "/etc/passwd"}, "symbolic links"),
])
def test_path_tricks_in_archive(hub: Hub, files: dict, links: dict | None, rule: str):
    pub, pack, url = _ticket(hub)
    data = zip_bytes({"pyproject.toml": pyproject(pack, "1.0.0", pub), **files}, links)
    r = hub.upload(url, data)
    err = _err(r)
    assert r.status_code == 422 and err["code"] == "archive_rejected" and rule in err["message"]


def test_zip_bomb_and_not_a_zip(hub: Hub):
    pub, pack, url = _ticket(hub)
    bomb = zip_bytes({"pyproject.toml": pyproject(pack, "1.0.0", pub), "bomb.bin": b"\0" * (50 * 1024 * 1024)})
    assert len(bomb) < TEST_UPLOAD_LIMIT
    r = hub.upload(url, bomb)
    assert r.status_code == 422 and "compression ratio" in _err(r)["message"]
    r = hub.upload(url, b"PK\x03\x04 this is not really a zip")
    assert r.status_code == 422 and "not a zip" in _err(r)["message"]


def test_upload_url_single_use_unknown_and_expired(hub: Hub, tmp_path: Path):
    pub, token = hub.new_publisher()
    pack = unique("once-")
    arc = build_archive(make_pack(tmp_path, pack, "1.0.0", pub), tmp_path / "a.zip")
    url = hub.reserve(pub, token, pack, "1.0.0").json()["signedUrl"]
    assert hub.upload(url, arc.path.read_bytes()).status_code == 200
    r = hub.upload(url, arc.path.read_bytes())
    assert r.status_code == 409 and _err(r)["code"] == "upload_url_used"
    r = hub.upload(url + "x", arc.path.read_bytes())
    assert r.status_code == 404 and _err(r)["code"] == "upload_url_unknown"

    arc2 = build_archive(make_pack(tmp_path, pack, "1.1.0", pub), tmp_path / "b.zip")
    url2 = hub.reserve(pub, token, pack, "1.1.0").json()["signedUrl"]
    with hub.session() as s:
        s.execute(update(UploadTicket).where(UploadTicket.pack_key == pack, UploadTicket.version == "1.1.0")
                  .values(expires_at=utcnow().replace(year=2000)))
        s.commit()
    r = hub.upload(url2, arc2.path.read_bytes())
    assert r.status_code == 410 and _err(r)["code"] == "upload_url_expired"
    # An abandoned, expired reservation frees the version for a new publish.
    assert hub.reserve(pub, token, pack, "1.1.0").status_code == 201


def test_unknown_things_are_404_json(hub: Hub):
    for path in ("/nodes/no-such-pack", "/nodes/no-such-pack/install", "/comfy-nodes/NoSuchClass/node",
                 "/api/v1/packs/no-such-pack", "/simple/no-such-pack/", "/api/v1/files/" + "a" * 64,
                 "/api/v1/publishers/nobody-here"):
        r = hub.http.get(path)
        assert r.status_code == 404, path
        assert _err(r)["message"]
    r = hub.http.post("/bulk/nodes/versions", json={"node_versions": "nope"})
    assert r.status_code == 422
