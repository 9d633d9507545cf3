"""``comfy serve``: the ComfyUI-compatible HTTP/WebSocket server with a persisted queue and the browser UI."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hearth.cli.common import (
    custom_nodes_option,
    env_option,
    isolation_option,
    report_plugin_errors,
    runtime_for,
)
from hearth.cli.main import UserError
from hearth.cli.models import model_folder_options
from hearth.core.context import Folders

if TYPE_CHECKING:
    from hearth.web.runtime import ServerState


def report_loaded(state: ServerState, isolation: str) -> None:
    """What the plugins' load (in the background, after the server answers) has to tell the person who started it."""
    if not state.is_loaded():
        click.echo(f"error: the plugins failed to load ({state.loaded.exception()}); prompts are refused until "
                   f"`comfy serve` is restarted (the traceback is in the log above)", err=True)
        return
    report_plugin_errors(state.plugins)
    click.echo(f"plugins loaded in {state.load_seconds or 0:.1f} s: {len(state.registry)} nodes")
    hosted = sorted(r.name for r in state.plugins.records.values() if r.placement == "pack host" and not r.error)
    if hosted:  # where untrusted code runs is worth one line at start (comfy plugins has the reasons)
        click.echo(f"isolation {isolation}: {len(hosted)} pack{'s' if len(hosted) != 1 else ''} "
                   f"in pack hosts ({', '.join(hosted)})")


def check_port(host: str, port: int) -> None:
    """Fail in one line when the address is taken, before plugins load and uvicorn prints a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"--port {port}: {host}:{port} is already in use (another server?); "
                                f"choose another port") from None
            raise UserError(f"--host {host}: cannot listen there: {exc.strerror or exc}") from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires a token.")
@click.option("--port", default=8188, show_default=True, type=click.IntRange(0, 65535))
@click.option("--cache", "cache_spec", default="classic", show_default=True,
              help="Cache strategy: classic, lru:N, ram:GB or none.")
@click.option("--token", help="Require this token on every request (generated when listening beyond loopback).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".hearth"),
              show_default=True, help="Folder for the queue and history database, settings and user data.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for saved outputs [default: DATA/output].")
@click.option("--input-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for inputs and uploads [default: DATA/input].")
@click.option("--temp-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for previews [default: DATA/temp].")
@click.option("--max-upload-mb", default=100.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Largest request body accepted (uploads and prompts).")
@click.option("--allow-origin", "allowed_origins", multiple=True, metavar="URL",
              help="Also accept browser requests from this origin (repeatable).")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Without a token only localhost names reach the server (a guard against DNS rebinding); also "
                   "accept this Host name (repeatable).")
@click.option("--session-days", default=30.0, show_default=True, type=click.FloatRange(min=0.001),
              help="With a token: how long a signed-in browser keeps its cookie.")
@click.option("--vram", "vram_mb", type=click.IntRange(min=1), default=None, metavar="MB",
              help="Memory budget for models on the compute device (default: what the device has free).")
@click.option("--no-frontend", is_flag=True, help="Serve Hearth's UI at / even when the ComfyUI frontend is installed.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@model_folder_options
@custom_nodes_option
@env_option
@isolation_option
def serve(host: str, port: int, env_name: str | None, cache_spec: str, token: str | None, data_dir: Path,
          out_dir: Path | None, input_dir: Path | None, temp_dir: Path | None, max_upload_mb: float,
          allowed_origins: tuple[str, ...], allowed_hosts: tuple[str, ...], session_days: float, vram_mb: int | None, no_frontend: bool, log_level: str, models_dir: Path,
          extra_model_paths: tuple[Path, ...], custom_nodes: tuple[Path, ...], isolation: str | None) -> None:
    """Serve the ComfyUI HTTP/WebSocket API, a persisted queue and the browser UI."""
    if token is not None and not token.strip():
        raise UserError("--token: the token must not be empty")
    import uvicorn

    from hearth.cli.ws_limits import WS_MAX_SIZE, LimitedWebSocketProtocol
    from hearth.web.app import create_app
    from hearth.web.config import ServerConfig, is_loopback
    from hearth.web.store import DataFolderInUse

    folders = Folders(output=out_dir or data_dir / "output", input=input_dir or data_dir / "input",
                      temp=temp_dir or data_dir / "temp")
    config = ServerConfig(host=host, port=port, data=data_dir, folders=folders, cache=cache_spec, token=token,
                          models_dir=models_dir, max_upload_mb=max_upload_mb, allowed_origins=list(allowed_origins),
                          allowed_hosts=list(allowed_hosts), session_days=session_days, serve_frontend=not no_frontend)
    # Plugins load in the background once the server listens: the Runtime is cheap until something asks for them.
    runtime = runtime_for(custom_nodes, env_name, load=False, models_dir=config.models_dir,
                          extra_model_paths=extra_model_paths, cache=cache_spec, vram_mb=vram_mb,
                          output=config.folders.output, input=config.folders.input, temp=config.folders.temp,
                          isolation=isolation)
    config.custom_nodes = list(runtime.options.custom_nodes)
    check_port(host, port)
    try:
        app = create_app(config, runtime=runtime)
    except DataFolderInUse as exc:
        raise UserError(f"--data: {exc}") from None
    except OSError as exc:
        raise UserError(f"--data {data_dir}: {exc}") from None
    state = app.state.hearth
    for note in state.db.quarantined:  # the server starts anyway; the admin finds the rows in the table
        click.echo(f"warning: quarantined {note.describe()}", err=True)
    for prompt_id in state.queue.recovered:
        click.echo(f"warning: prompt {prompt_id} was running when the server stopped; marked failed", err=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    nodes = f"{len(state.catalogue.nodes)} nodes (plugins loading)" if state.catalogue is not None else \
        "nodes once the plugins load"
    click.echo(f"Hearth serving {nodes} at {url} (UI: {state.frontend}; "
               f"{len(state.queue.pending())} prompts pending; data in {config.data})")
    state.on_loaded.append(lambda state: report_loaded(state, runtime.options.trust.mode))
    if state.token is not None:
        if token is None:
            click.echo(f"Listening beyond loopback ({host}): every request needs this token.")
        click.echo(f"Open {url} and sign in with the token {state.token}, open {url}?token={state.token}, or send "
                   f"'Authorization: Bearer {state.token}'.")
    elif not is_loopback(host):  # unreachable: require_token always sets one; kept as a guard against edits
        raise UserError("refusing to listen beyond loopback without a token")
    # ws: uvicorn's websockets-sansio protocol, with a 1009 close that reaches a client sending a frame over the limit.
    uvicorn.run(app, host=host, port=port, log_level=log_level, ws=LimitedWebSocketProtocol,
                ws_max_size=WS_MAX_SIZE, timeout_graceful_shutdown=5)
