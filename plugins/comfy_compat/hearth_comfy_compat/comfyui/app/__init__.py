"""ComfyUI's ``app`` package (user manager, frontend management, logger)."""
