# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: files opened by name, a fd from os.open closed.
import os

with open("notes.txt", "w") as fh:
    fh.write("x")
fd = os.open("notes.txt", os.O_RDONLY)
os.close(fd)
