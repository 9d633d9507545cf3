"""ComfyUI's ``comfyui_version``: the ComfyUI release whose interfaces Hearth serves to packs.

Packs compare it to decide which API to use (``if comfyui_version.__version__ >= "0.3.40"``); it is the same
version Hearth's server reports as ``comfyui_version`` in ``/system_stats``.
"""

__version__ = "0.3.64"
