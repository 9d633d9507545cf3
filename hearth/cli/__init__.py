"""The `comfy` command: thin commands over the libraries."""
