"""A frontend-only pack: no nodes, just browser code, served at /extensions/webdir_pack/ (WEB_DIRECTORY) and at
/extensions/webdir-pack-legacy/ (registered the older way, through nodes.EXTENSION_WEB_DIRS)."""

import os

import nodes

WEB_DIRECTORY = "./web"
nodes.EXTENSION_WEB_DIRS["webdir-pack-legacy"] = os.path.join(os.path.dirname(os.path.realpath(__file__)), "legacy")
__all__ = ["WEB_DIRECTORY"]
