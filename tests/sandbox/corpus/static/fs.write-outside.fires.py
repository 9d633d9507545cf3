# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates writing into the home folder and a shell profile.
import os
from pathlib import Path

def persist():
    with open(os.path.expanduser("~/.bashrc"), "a") as fh:
        fh.write("# inert\n")
    (Path.home() / "notes.txt").write_text("inert")
