# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
import os

with open(os.path.join(os.environ["HOME"], "big.bin"), "wb") as fh:
    fh.write(b"0" * (8 * 1024 * 1024))
