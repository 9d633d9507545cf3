"""``comfy run``: run a workflow (API or UI format) headless, or only check it with ``--check``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from hearth.cli.catalogued import node_catalogue, plugin_args
from hearth.cli.common import (
    JsonStdout,
    custom_nodes_option,
    env_option,
    isolation_option,
    read_json,
    runtime_for,
)
from hearth.cli.main import UserError
from hearth.cli.models import model_folder_options
from hearth.core.catalogue import CatalogueMiss
from hearth.core.context import Folders
from hearth.core.executor import PromptFormatError, parse_prompt
from hearth.core.executor.validation import Validator
from hearth.core.executor.workflow import is_ui_workflow, ui_to_api
from hearth.core.node_registry import NodeRegistry
from hearth.core.runtime import Runtime


def parse_assignment(text: str) -> tuple[str, str, Any]:
    """``NODE.INPUT=VALUE``; the value is read as JSON when it parses (numbers, true, lists), else as text."""
    target, sep, raw = text.partition("=")
    node_id, dot, name = target.partition(".")
    if not sep or not dot or not node_id or not name:
        raise UserError(f"--set {text!r}: expected NODE.INPUT=VALUE, for example --set 3.seed=42")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return node_id, name, value


def load_workflow(path: Path, registry: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(API prompt, UI workflow or None) from a workflow file of either format."""
    data = read_json(path)
    if is_ui_workflow(data):
        try:
            return ui_to_api(data, registry), data
        except (PromptFormatError, KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: not a valid UI-format workflow: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data:
        return data["prompt"], (data.get("extra_data") or {}).get("extra_pnginfo", {}).get("workflow")
    return data, None


@click.command()
@click.argument("workflow", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("output"),
              show_default=True, help="Folder for saved outputs.")
@click.option("--input-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("input"),
              show_default=True, help="Folder LoadImage reads from.")
@click.option("--set", "assignments", multiple=True, metavar="NODE.INPUT=VALUE", help="Override an input.")
@click.option("--cache", "cache_spec", default="classic", show_default=True,
              help="Cache strategy: classic, lru:N, ram:GB or none.")
@click.option("--vram", "vram_mb", type=click.IntRange(min=1), default=None, metavar="MB",
              help="Memory budget for models on the compute device (default: what the device has free).")
@click.option("--check", is_flag=True,
              help="Parse and validate only (from the node catalogue when it is fresh: no plugin is imported; a "
                   "stale one is rebuilt in the background meanwhile; see `comfy nodes --help`).")
@click.option("--json", "as_json", is_flag=True, help="With --check: print the result as ComfyUI's /prompt would.")
@model_folder_options
@custom_nodes_option
@env_option
@isolation_option
def run(workflow: Path, out_dir: Path, input_dir: Path, assignments: tuple[str, ...], cache_spec: str,
        vram_mb: int | None, check: bool, as_json: bool, models_dir: Path, extra_model_paths: tuple[Path, ...],
        custom_nodes: tuple[Path, ...], env_name: str | None, isolation: str | None) -> None:
    """Run WORKFLOW.json and print the paths of the files it saved."""
    if as_json and not check:
        raise UserError("--json works with --check only (comfy run --check --json WORKFLOW.json)")
    with JsonStdout(as_json) as out:  # with --json, what packs print while loading goes to stderr
        # --check validates against the node catalogue when it is fresh: no plugin, no torch imported. A stale one
        # is rebuilt in the background: rebuilding reads every node, more than checking one workflow without it.
        runtime = runtime_for(custom_nodes, env_name, models_dir=models_dir, extra_model_paths=extra_model_paths,
                              cache=cache_spec, vram_mb=vram_mb, output=out_dir, input=input_dir,
                              temp=out_dir / "temp", isolation=isolation, load=not check)
        with runtime.activate():  # a UI workflow's widgets map through INPUT_TYPES, which list the Runtime's folders
            if check:
                catalogue = node_catalogue(runtime, background=plugin_args(custom_nodes, env_name, isolation))
                if catalogue is not None:
                    try:
                        _run(runtime, workflow, assignments, check, out, catalogue.registry(runtime))
                        return
                    except CatalogueMiss:  # a node only the loaded plugins can describe: validate against them
                        pass
            _run(runtime, workflow, assignments, check, out, runtime.nodes)


def _run(runtime: Runtime, workflow: Path, assignments: tuple[str, ...], check: bool, out: JsonStdout,
         registry: NodeRegistry) -> None:
    as_json = out.enabled
    prompt, ui_workflow = load_workflow(workflow, registry)
    for node_id, name, value in map(parse_assignment, assignments):
        node = prompt.get(node_id) if isinstance(prompt, dict) else None
        if not isinstance(node, dict):
            raise UserError(f"--set {node_id}.{name}: node {node_id} is not in {workflow}")
        node.setdefault("inputs", {})[name] = value
    try:
        nodes = parse_prompt(prompt)
    except PromptFormatError as exc:
        raise UserError(f"{workflow}: invalid_prompt: {exc}") from None

    # --check needs no executor (and so no plugins); a run validates with the executor's own validator.
    validation = Validator(registry, runtime).validate(nodes) if check else runtime.executor.validator.validate(nodes)
    if check:
        if as_json:
            out.emit(validation.response())
        elif validation.ok:
            click.echo(f"ok: {len(nodes)} nodes, outputs {', '.join(validation.outputs)}")
        if not validation.ok:
            if not as_json:
                raise UserError(validation.first_problem())
            sys.exit(2)
        return
    if not validation.ok:
        raise UserError(validation.first_problem())
    for node_id, entry in validation.node_errors.items():
        click.echo(f"warning: outputs {', '.join(entry['dependent_outputs'])} skipped: node {node_id} "
                   f"({entry['class_type']}): {entry['errors'][0]['message']}", err=True)

    executor = runtime.executor
    extra = {"extra_pnginfo": {"workflow": ui_workflow}} if ui_workflow is not None else {}
    with _ProgressView(len(nodes)) as view:
        result = executor.execute(nodes, validation.outputs, prompt_id=workflow.stem, extra_data=extra,
                                  emit=view.on_event, original=prompt)
    if result.status == "interrupted":
        raise click.ClickException("interrupted")
    if not result.ok:
        err = result.error or {}
        debug = click.get_current_context().find_root().params.get("debug")
        if debug:
            click.echo("".join(err.get("traceback") or []), err=True)
        # The same one-line "error: ..." as every other failure; exit 1 tells a node failure from bad input (2).
        failure = UserError(
            f"node {err.get('node_id')} ({err.get('node_type')}) failed: {err.get('exception_type', '').rsplit('.', 1)[-1]}: "
            f"{err.get('exception_message')}" + ("" if debug else " (run with --debug for the traceback)"))
        failure.exit_code = 1
        raise failure
    for path in output_files(result.outputs, runtime.folders):
        click.echo(str(path))


def output_files(outputs: dict[str, dict[str, Any]], folders: Folders) -> list[Path]:
    paths = []
    for ui in outputs.values():
        for key in ("images", "gifs", "videos", "audio", "files"):
            for item in ui.get(key, []):
                if isinstance(item, dict) and "filename" in item:
                    paths.append(folders.for_type(item.get("type", "output")) / item.get("subfolder", "") /
                                 item["filename"])
    return paths


class _ProgressView:
    """A rich progress display fed by executor events (silent when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console  # deferred: `comfy run --check` shows no progress
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True,
                                 disable=not console.is_terminal)
        self.nodes = self.progress.add_task("nodes", total=total)
        self.steps = self.progress.add_task("", total=1, visible=False)

    def __enter__(self) -> _ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def on_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "execution_cached":
            self.progress.advance(self.nodes, len(data["nodes"]))
        elif event == "executing" and data.get("node") is not None:
            self.progress.advance(self.nodes, 1)
            self.progress.update(self.nodes, description=f"node {data['node']}")
            self.progress.update(self.steps, visible=False)
        elif event == "progress":
            self.progress.update(self.steps, completed=data["value"], total=data["max"], visible=True,
                                 description=f"  node {data['node']}")
