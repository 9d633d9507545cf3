"""ComfyUI's ``comfy_extras.nodes_string`` module: the string nodes, Hearth's classes under ComfyUI's names."""

from __future__ import annotations

from hearth_comfy_compat.comfy_nodes import node_exports

__getattr__ = node_exports([
    "StringConcatenate", "StringSubstring", "StringLength", "CaseConverter", "StringTrim", "StringReplace",
    "StringContains", "StringCompare", "RegexMatch", "RegexExtract", "RegexReplace",
])
