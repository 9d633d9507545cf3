"""The ``hearth.default`` entry point of the ComfyUI compatibility plugin: it loads the custom-node folders, and
puts the packs' ``PromptServer`` (routes, on-prompt handlers, ``send_sync``) on ``comfy serve``.

A default-tier plugin (pytest's tiers): installed packs win a node-name clash with it. Imported when plugins
load, so it imports nothing heavy; the ComfyUI modules are served only once a pack is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hearth.core.hookspecs import hookimpl


@hookimpl
def custom_nodes_for_folders(folders: list[Path], wanted: Callable[[str], bool], plugins: Any) -> Any:
    from hearth_comfy_compat.loader import CustomNodesLoader

    loader = CustomNodesLoader(folders, wanted=wanted)
    loader.load(plugins)
    return loader


@hookimpl
def register_prompt_handlers() -> Any:
    # Packs' PromptServer.instance.add_on_prompt_handler(...) functions, run in the order packs added them.
    from hearth_comfy_compat.server import PromptServer

    return [PromptServer.instance.trigger_on_prompt]


@hookimpl
def on_server_start(app: Any, events: Any, queue: Any) -> None:
    from hearth_comfy_compat import server_routes

    server_routes.install(app, events, queue)


@hookimpl
def on_server_stop(app: Any, events: Any) -> None:
    from hearth_comfy_compat import server_routes

    server_routes.uninstall(events)
