# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: writing next to the module, to /tmp, and reading the home folder.
import os
from pathlib import Path

HERE = os.path.dirname(__file__)

def save(data):
    with open(os.path.join(HERE, "cache.json"), "w") as fh:
        fh.write(data)
    with open("/tmp/preview.txt", "w") as fh:
        fh.write(data)
    return (Path.home() / "config.json").read_text()
