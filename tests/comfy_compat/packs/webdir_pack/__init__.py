"""A frontend-only pack: no nodes, just browser code in WEB_DIRECTORY, served at /extensions/webdir_pack/."""

WEB_DIRECTORY = "./web"
__all__ = ["WEB_DIRECTORY"]
