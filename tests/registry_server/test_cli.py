"""`comfy registry admin ...` through click's CliRunner, on the same data folder a server would use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hearth.cli.registry import registry
from hearth.registry_server.accounts.services import authenticate
from hearth.registry_server.app import open_server
from hearth.registry_server.settings import Settings


@pytest.fixture
def run(tmp_path: Path):
    runner = CliRunner()
    data = str(tmp_path / "data")

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(registry, ["admin", *args, "--data", data])
        if ok:
            assert result.exit_code == 0, (result.output, result.stderr)
        return result

    invoke.data = Path(data)
    return invoke


def test_accounts_and_tokens(run):
    run("create-user", "alice", "--admin")
    run("create-user", "bob")
    run("create-publisher", "acme", "--owner", "bob")
    out = run("create-token", "--publisher", "acme", "--expires", "30")
    token = out.stdout.strip()
    assert token.startswith("hth_") and "\n" not in token  # the token alone on stdout
    assert "expires" in out.stderr
    reg = open_server(Settings(data_dir=run.data), migrate=False)
    from sqlmodel import Session

    with Session(reg.engine) as s:
        assert authenticate(s, token, "publish").publisher_id == "acme"
        assert authenticate(s, token, "publish").expires_at is not None
    admin_token = run("create-token", "--user", "alice", "--scope", "admin").stdout.strip()
    run("revoke-token", token[:12])
    with Session(reg.engine) as s:
        with pytest.raises(Exception, match="revoked"):
            authenticate(s, token, "read")
        assert authenticate(s, admin_token, "admin").scope == "admin"
    listed = [json.loads(line) for line in run("tokens", "--json").stdout.splitlines()]
    assert [(t["prefix"], t["scope"], bool(t["revoked_at"])) for t in listed] == [
        (token[:12], "publish", True), (admin_token[:12], "admin", False)]
    assert token not in run("tokens").stdout and token[4:] not in run("tokens", "--json").stdout
    lines = [json.loads(line) for line in run("audit", "--json").stdout.splitlines()]
    assert [e["action"] for e in lines][:2] == ["token.revoke", "token.create"]
    table = run("audit").stdout
    assert "when (UTC)" in table and "cli" in table


@pytest.mark.parametrize("args, message", [
    (["create-publisher", "Bad_Id", "--owner", "x"], "must match"),
    (["create-publisher", "acme", "--owner", "nobody"], "user 'nobody' not found"),
    (["create-token", "--publisher", "nope"], "publisher 'nope' not found"),
    (["create-token", "--user", "bob", "--scope", "admin"], "not an admin"),
    (["create-token", "--publisher", "acme", "--expires", "0"], "--expires"),
    (["revoke-token", "hth_unknown"], "not found"),
    (["ban", "no-such-pack"], "pack 'no-such-pack' not found"),
    (["yank", "@1.0.0"], "not PACK or PACK@VERSION"),
])
def test_errors_are_one_line_exit_2(run, args: list[str], message: str):
    run("create-user", "bob")
    run("create-publisher", "acme", "--owner", "bob")
    result = run(*args, ok=False)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_database_url_is_one_line(tmp_path: Path):
    result = CliRunner().invoke(registry, ["admin", "create-user", "x", "--db",
                                           "postgresql+psycopg://nobody@127.0.0.1:1/none"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_moderation_commands(run, tmp_path: Path):
    """approve/ban/unban/yank/delete on a version published straight into the database (no server needed)."""
    from sqlmodel import Session

    from hearth.registry_server.packs.models import Pack, Version

    run("create-user", "bob")
    run("create-publisher", "acme", "--owner", "bob")
    reg = open_server(Settings(data_dir=run.data), migrate=False)
    with Session(reg.engine) as s:
        s.add(Pack(id="demo", key="demo", publisher_id="acme"))
        s.add(Version(id="v1", pack_id="demo", version="1.0.0", status="flagged", sha256="0" * 64))
        s.commit()
    run("approve", "demo@1.0.0", "--reason", "looked fine")
    run("yank", "demo@1.0.0", "--reason", "oops")
    with Session(reg.engine) as s:
        v = s.get(Version, "v1")
        assert (v.status, v.yanked, v.yanked_reason) == ("active", True, "oops")
        assert s.get(Pack, "demo").latest_version is None  # yanked is never latest
    run("yank", "demo@1.0.0", "--undo")
    run("ban", "demo@1.0.0")
    with Session(reg.engine, expire_on_commit=False) as s:
        assert s.get(Version, "v1").status == "banned"
    run("unban", "demo@1.0.0")
    run("suppress", "demo", "process.spawn", "--path", "tools.py", "--reason", "reviewed")
    assert run("suppress", "demo", "archive.symlink", "--reason", "x", ok=False).exit_code == 2
    run("delete", "demo@1.0.0")
    with Session(reg.engine) as s:
        assert s.get(Version, "v1").status == "deleted"
    actions = [json.loads(x)["action"] for x in run("audit", "--json").stdout.splitlines()]
    assert actions[:7] == ["version.delete", "finding.suppress", "unban", "ban", "version.unyank", "version.yank",
                           "version.approve"]
