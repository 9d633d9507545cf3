"""ComfyUI's internal modules (``folder_paths``, ``comfy.utils``, ``nodes``...) for custom-node packs, backed by Hearth.

Packs written for ComfyUI import its internals at module level. :func:`install` puts a ``sys.meta_path`` finder in
place that serves those names from the Hearth modules in this package; ``CustomNodesLoader`` installs it before the
first pack loads, and it stays installed because packs also import lazily inside node functions. Nothing is
installed as a top-level package, so a Python environment without packs never sees a ``folder_paths`` module.

A name Hearth does not provide inside a served module does not stop the pack from loading: see
:mod:`hearth_comfy_compat.hook`.
"""

from hearth_comfy_compat.hook import (
    SERVED,
    HearthDoesNotProvide,
    install,
    installed,
    missing_names,
    register_pack,
    uninstall,
)

__all__ = ["SERVED", "HearthDoesNotProvide", "install", "installed", "missing_names", "register_pack", "uninstall"]
