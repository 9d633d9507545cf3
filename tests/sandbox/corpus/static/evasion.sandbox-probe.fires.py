# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: behaving only outside a sandbox.
import os
import socket

def watched():
    if [name for _, name in socket.if_nameindex()] == ["lo"]:
        return True
    if "CI" in os.environ or os.environ.get("HEARTH_SANDBOX"):
        return True
    return "NoNewPrivs:\t1" in open("/proc/self/" + "status").read()
