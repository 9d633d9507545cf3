"""`comfy registry`: run a node registry server (`serve`) and administer it (`admin ...`)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click


def UserError(message: str) -> click.ClickException:  # noqa: N802 - stands in for the class
    """hearth.cli.main's UserError (one line, exit 2), imported late: hearth.cli.main imports this module while it loads."""
    from hearth.cli.main import UserError as _UserError

    return _UserError(message)


def _store_options(f):  # noqa: ANN001, ANN201
    f = click.option("--storage", "storage_url", metavar="URL",
                     help="Blob storage: a folder, or s3://BUCKET/PREFIX (AWS_* variables give endpoint and keys).")(f)
    f = click.option("--db", "db_url", metavar="URL",
                     help="Database URL (default: SQLite in DIR); e.g. postgresql+psycopg://user@host/db.")(f)
    f = click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("registry-data"), show_default=True, help="Folder for the SQLite file and blobs.")(f)
    return f


def _settings(data_dir: Path, db_url: str | None, storage_url: str | None, **extra):  # noqa: ANN202
    from hearth.registry_server.settings import Settings

    return Settings(data_dir=data_dir, db_url=db_url, storage_url=storage_url, **extra)


def _friendly(f):  # noqa: ANN001, ANN201
    """Registry errors become one-line user errors (exit 2) instead of tracebacks."""
    @functools.wraps(f)
    def wrapper(*args, **kwargs):  # noqa: ANN202
        from hearth.registry_server.errors import ApiError

        try:
            return f(*args, **kwargs)
        except ApiError as exc:
            raise UserError(exc.message) from exc
        except (ValueError, RuntimeError, OSError) as exc:
            raise UserError(str(exc)) from exc
        except Exception as exc:  # SQLAlchemy connection errors and the like: name them, no traceback
            if type(exc).__module__.startswith(("sqlalchemy", "botocore", "boto3", "alembic")):
                raise UserError(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
            raise
    return wrapper


@click.group()
def registry() -> None:
    """Run and administer a node-pack registry (ComfyUI registry API, PEP 691 index, web pages)."""


@registry.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@_store_options
@click.option("--private", is_flag=True, help="Every read needs a read token.")
@click.option("--upstream", metavar="URL", help="Mirror mode: pull-through cache of this registry.")
@click.option("--public-url", metavar="URL", help="Base URL for links handed out (default: the request's host).")
@click.option("--max-upload-mb", type=float, default=100, show_default=True, help="Largest archive accepted.")
@click.option("--workers", type=int, default=1, show_default=True, help="Server processes.")
@click.option("--cache-ttl", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="Serve public reads from memory at most this long (0: off). Any write clears it: through "
                   "this server at once, by admin commands or other servers within half a second.")
@click.option("--threads", type=int, default=8, show_default=True, help="Request handler threads.")
@click.option("--no-isolate-import", is_flag=True, help="Verify without importing packs (static checks only).")
@click.option("--review", type=click.Choice(["all", "untrusted", "none"]), default="untrusted", show_default=True,
              envvar="HEARTH_REGISTRY_REVIEW",
              help="Which verified versions wait for an admin's approval before they go active: every version, "
                   "those of publishers not marked trusted (`comfy registry admin trust`), or none.")
@_friendly
def serve(host: str, port: int, data_dir: Path, db_url: str | None, storage_url: str | None, private: bool,
          upstream: str | None, public_url: str | None, max_upload_mb: float, workers: int, cache_ttl: float, threads: int,
          no_isolate_import: bool, review: str) -> None:
    """Serve the registry. Migrations run at start; Ctrl-C stops it."""
    from hearth.registry_server.app import serve as run_server

    settings = _settings(data_dir, db_url, storage_url, private=private, upstream=upstream, public_url=public_url,
                         max_upload_bytes=int(max_upload_mb * 1024 * 1024), isolate_import=not no_isolate_import,
                         cache_ttl_s=cache_ttl, threads=threads, review=review)
    run_server(settings, host=host, port=port, workers=workers)


@registry.group()
def admin() -> None:
    """Administer a registry's database directly (works while the server runs)."""


def _open(data_dir: Path, db_url: str | None, storage_url: str | None):  # noqa: ANN202
    from hearth.registry_server.app import open_server

    return open_server(_settings(data_dir, db_url, storage_url))


def _session(reg):  # noqa: ANN001, ANN202
    from sqlmodel import Session

    return Session(reg.engine, expire_on_commit=False)


@admin.command("create-user")
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="May moderate and create admin tokens.")
@_store_options
@_friendly
def create_user(name: str, is_admin: bool, data_dir: Path, db_url: str | None, storage_url: str | None) -> None:
    """Create a user."""
    from hearth.registry_server.accounts.services import create_user as make

    with _session(_open(data_dir, db_url, storage_url)) as s:
        make(s, name, is_admin)
    click.echo(f"created user {name}{' (admin)' if is_admin else ''}", err=True)


@admin.command("create-publisher")
@click.argument("publisher_id")
@click.option("--owner", required=True, help="User who owns the publisher.")
@click.option("--name", default="", help="Display name.")
@_store_options
@_friendly
def create_publisher(publisher_id: str, owner: str, name: str, data_dir: Path, db_url: str | None,
                     storage_url: str | None) -> None:
    """Create a publisher owned by a user."""
    from hearth.registry_server.accounts.services import create_publisher as make

    with _session(_open(data_dir, db_url, storage_url)) as s:
        make(s, publisher_id, owner, name)
    click.echo(f"created publisher {publisher_id} (owner {owner})", err=True)


@admin.command("add-member")
@click.argument("publisher_id")
@click.argument("user")
@click.option("--role", type=click.Choice(["member", "owner"]), default="member", show_default=True)
@_store_options
@_friendly
def add_member(publisher_id: str, user: str, role: str, data_dir: Path, db_url: str | None,
               storage_url: str | None) -> None:
    """Add a user to a publisher."""
    from hearth.registry_server.accounts.services import add_member as add

    with _session(_open(data_dir, db_url, storage_url)) as s:
        add(s, publisher_id, user, role)
    click.echo(f"{user} is now {role} of {publisher_id}", err=True)


@admin.command("create-token")
@click.option("--publisher", "publisher_id", help="Publisher the token acts for (required for publish).")
@click.option("--user", "user_name", help="Owning user (default: the publisher's owner).")
@click.option("--scope", type=click.Choice(["publish", "read", "admin"]), default="publish", show_default=True)
@click.option("--expires", type=float, metavar="DAYS", help="Expire after this many days (default: never).")
@_store_options
@_friendly
def create_token(publisher_id: str | None, user_name: str | None, scope: str, expires: float | None, data_dir: Path,
                 db_url: str | None, storage_url: str | None) -> None:
    """Create a token and print it alone on stdout. It is shown this once; only its hash is stored."""
    from hearth.registry_server.accounts.services import create_token as make

    if expires is not None and expires <= 0:
        raise UserError("--expires must be a positive number of days")
    with _session(_open(data_dir, db_url, storage_url)) as s:
        secret, token = make(s, user_name, publisher_id, scope, expires)
    click.echo(secret)
    click.echo(f"token {token.prefix}… scope {scope}" + (f", expires {token.expires_at:%Y-%m-%d %H:%M}Z"
                                                         if token.expires_at else ""), err=True)


@admin.command("tokens")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_store_options
@_friendly
def tokens(as_json: bool, data_dir: Path, db_url: str | None, storage_url: str | None) -> None:
    """List tokens (never their secrets): prefix, owner, publisher, scope, expiry, last use, revocation."""
    from rich.console import Console
    from rich.table import Table

    from hearth.registry_server.accounts.models import User
    from hearth.registry_server.accounts.services import list_tokens

    with _session(_open(data_dir, db_url, storage_url)) as s:
        rows = [(t, s.get(User, t.user_id)) for t in list_tokens(s)]

    def when(dt) -> str:  # noqa: ANN001
        return f"{dt:%Y-%m-%d %H:%M}" if dt else ""

    if as_json:
        for t, u in rows:
            click.echo(json.dumps({"prefix": t.prefix, "user": u.name if u else None, "publisher": t.publisher_id,
                                   "scope": t.scope, "expires_at": when(t.expires_at) or None,
                                   "last_used_at": when(t.last_used_at) or None,
                                   "revoked_at": when(t.revoked_at) or None}))
        return
    table = Table("prefix", "user", "publisher", "scope", "expires", "last used", "revoked")
    for t, u in rows:
        table.add_row(t.prefix, u.name if u else "?", t.publisher_id or "", t.scope, when(t.expires_at),
                      when(t.last_used_at), when(t.revoked_at))
    Console().print(table)


@admin.command("revoke-token")
@click.argument("token")
@_store_options
@_friendly
def revoke_token(token: str, data_dir: Path, db_url: str | None, storage_url: str | None) -> None:
    """Revoke a token, given in full or by its 12-character prefix."""
    from hearth.registry_server.accounts.services import revoke_token as revoke

    with _session(_open(data_dir, db_url, storage_url)) as s:
        t = revoke(s, token)
    click.echo(f"revoked token {t.prefix}…", err=True)


def _moderation(name: str, doc: str, undo_flag: bool = False):  # noqa: ANN202
    @click.argument("target", metavar="PACK[@VERSION]")
    @click.option("--reason", default="", help="Recorded in the audit log (and shown for yanks).")
    @_store_options
    @_friendly
    def command(target: str, reason: str, data_dir: Path, db_url: str | None, storage_url: str | None,
                undo: bool = False) -> None:
        from hearth.registry_server.admin import services

        with _session(_open(data_dir, db_url, storage_url)) as s:
            if name == "yank":
                services.yank(s, target, "cli", reason, undo=undo)
            else:
                getattr(services, name.replace("-", "_"))(s, target, "cli", reason)
        click.echo(f"{'unyank' if undo else name}: {target}", err=True)

    command.__doc__ = doc
    if undo_flag:
        command = click.option("--undo", is_flag=True, help="Un-yank.")(command)
    admin.command(name)(command)


_moderation("ban", "Ban a pack (PACK) or one version (PACK@VERSION): hidden and not installable.")
_moderation("unban", "Lift a ban; an unbanned version becomes active.")
_moderation("yank", "Yank a version: still installable when pinned, never chosen as latest.", undo_flag=True)
_moderation("approve", "Approve a version waiting for review (or flagged or pending): it becomes active.")
_moderation("reject", "Reject a version waiting for review: it is never installable (the version string stays used).")
_moderation("reverify", "Verify a flagged version again (e.g. after `suppress`); a running server picks it up.")


@admin.command("trust")
@click.argument("publisher_id")
@click.option("--level", type=click.Choice(["trusted", "untrusted"]), default="trusted", show_default=True,
              help="trusted: verified versions with a passing scan go active; untrusted: they wait for review.")
@click.option("--reason", default="", help="Recorded in the audit log.")
@_store_options
@_friendly
def trust(publisher_id: str, level: str, reason: str, data_dir: Path, db_url: str | None,
          storage_url: str | None) -> None:
    """Set a publisher's trust level (audited)."""
    from hearth.registry_server.accounts.services import set_trust

    with _session(_open(data_dir, db_url, storage_url)) as s:
        set_trust(s, publisher_id, level, "cli", reason)
    click.echo(f"publisher {publisher_id} is now {level}", err=True)


@admin.command("suppress")
@click.argument("pack")
@click.argument("rule")
@click.option("--path", default="*", show_default=True, help="File the finding is in ('*': any).")
@click.option("--line", type=int, help="Line of the finding (default: anywhere in the file).")
@click.option("--reason", required=True, help="Why this finding is a false positive (kept for reviewers).")
@_store_options
@_friendly
def suppress(pack: str, rule: str, path: str, line: int | None, reason: str, data_dir: Path, db_url: str | None,
             storage_url: str | None) -> None:
    """Rule a verification finding a false positive for PACK's later versions."""
    from hearth.registry_server.admin import services

    with _session(_open(data_dir, db_url, storage_url)) as s:
        services.suppress(s, pack, rule, "cli", reason, path, line)
    click.echo(f"suppressed {rule} in {path} for {pack}", err=True)


@admin.command("allow-name")
@click.argument("name")
@click.option("--reason", required=True, help="Why a pack may take this reserved name (kept in the audit log).")
@click.option("--undo", is_flag=True, help="Take the allowance back (packs already published keep the name).")
@_store_options
@_friendly
def allow_name(name: str, reason: str, undo: bool, data_dir: Path, db_url: str | None, storage_url: str | None
               ) -> None:
    """Let a new pack take NAME although it is reserved (a Python package index project, a base package, Hearth's
    own). Installs still take NAME from the Python package index wherever another pack depends on it."""
    from hearth.registry_server.packs.names import allow_name as allow

    with _session(_open(data_dir, db_url, storage_url)) as s:
        key = allow(s, name, "cli", reason, undo=undo)
    click.echo(f"{'no longer allowed' if undo else 'allowed'}: new packs named {key}", err=True)


@admin.command("delete")
@click.argument("target", metavar="PACK@VERSION")
@_store_options
@_friendly
def delete(target: str, data_dir: Path, db_url: str | None, storage_url: str | None) -> None:
    """Delete a version (its version string stays taken for good)."""
    from hearth.registry_server.admin import services

    with _session(_open(data_dir, db_url, storage_url)) as s:
        services.delete_version(s, target, "cli")
    click.echo(f"deleted: {target}", err=True)


@admin.command("audit")
@click.option("--limit", default=50, show_default=True)
@click.option("--action", help="Only this action, e.g. version.upload.")
@click.option("--target", help="Only targets containing this text.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@_store_options
@_friendly
def audit(limit: int, action: str | None, target: str | None, as_json: bool, data_dir: Path, db_url: str | None,
          storage_url: str | None) -> None:
    """Show the audit log, newest first."""
    from rich.console import Console
    from rich.table import Table

    from hearth.registry_server.admin.services import audit_log

    with _session(_open(data_dir, db_url, storage_url)) as s:
        entries = audit_log(s, limit, action, target)
    if as_json:
        for e in entries:
            click.echo(json.dumps({"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                                   "target": e.target, "detail": e.detail}))
        return
    table = Table("when (UTC)", "actor", "action", "target", "detail")
    for e in entries:
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.target,
                      json.dumps(e.detail) if e.detail else "")
    Console().print(table)


@admin.command("gc")
@click.option("--grace", type=float, default=600, show_default=True, help="Keep unreferenced blobs younger "
              "than this many seconds (another server may be about to commit them).")
@_store_options
@_friendly
def gc(grace: float, data_dir: Path, db_url: str | None, storage_url: str | None) -> None:
    """Delete stored blobs that no version refers to."""
    from hearth.registry_server.publishing.services import collect_garbage

    n = collect_garbage(_open(data_dir, db_url, storage_url), grace)
    click.echo(f"removed {n} unreferenced blob(s)", err=True)
