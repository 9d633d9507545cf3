# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
import socket

# 192.0.2.1 is TEST-NET-1: reserved for documentation, never routed.
try:
    socket.create_connection(("192.0.2.1", 80), timeout=1)
except OSError:
    pass
NODE_CLASS_MAPPINGS = {}
