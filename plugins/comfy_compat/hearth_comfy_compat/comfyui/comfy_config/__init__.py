"""ComfyUI's ``comfy_config`` package: a custom-node pack's ``pyproject.toml``, read into typed settings."""
