"""The executor's HTTP/WebSocket server (ComfyUI-compatible API) and the browser UI."""
