"""The registry server: publishers, tokens, packs, versions, uploads, search, simple index and verification.

Run it with ``comfy registry serve [--data DIR] [--db URL] [--storage URL] [--private] [--upstream URL]``; set
it up with ``comfy registry admin create-user``, ``create-publisher`` and ``create-token``. It speaks three
APIs: ComfyUI's registry API (``/nodes``, ``/publishers/{id}/nodes/{id}/versions``, ...) for comfy-cli, a PEP 691
simple index at ``/simple/`` for uv and pip, and Hearth's own JSON API under ``/api/v1`` (docs at ``/docs``);
web pages at ``/``. Each domain is a folder with ``models.py``, ``schemas.py``, ``services.py``, ``routes.py``;
``app.py`` wires them to the settings, the database (``db.py``) and the storage backend.
"""
