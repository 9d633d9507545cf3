"""ComfyUI modules implemented at their own paths: ``comfyui/comfy/model_patcher.py`` serves ``comfy.model_patcher``.

The import hook (:mod:`hearth_comfy_compat.hook`) serves a ComfyUI module name from the file here with the same
path; packages are folders with an ``__init__.py``. A name served by both this folder and ``hook.SERVED`` is
served from ``SERVED``.
"""
