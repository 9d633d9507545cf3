# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
# Reports what the sandbox lets it do, through the category of its one node (the only channel out).
import json
import os
import socket


def attempt(action):
    try:
        action()
        return True
    except OSError:
        return False


def write(path):
    with open(path, "w") as fh:
        fh.write("inert")


here = os.path.dirname(os.path.abspath(__file__))
REPORT = {
    "env": sorted(os.environ),
    "write_own_folder": attempt(lambda: write(os.path.join(here, "marker.txt"))),
    "write_home": attempt(lambda: write(os.path.join(os.environ["HOME"], "marker.txt"))),
    "write_tmp": attempt(lambda: write("/tmp/hearth-sandbox-probe-marker")),
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "pid": os.getpid(),
    "capabilities": open("/proc/self/status").read().split("CapEff:")[1].split()[0],
}


class Probe:
    CATEGORY = json.dumps(REPORT)
    RETURN_TYPES = ()
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return ()


NODE_CLASS_MAPPINGS = {"Probe": Probe}
