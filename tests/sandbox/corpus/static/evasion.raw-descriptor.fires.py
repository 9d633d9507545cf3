# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: writing to inherited descriptors by number.
import os

for fd in range(3, 64):
    try:
        os.write(fd, b"{}")
    except OSError:
        pass
log = open(3, "w")
