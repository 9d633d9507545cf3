# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
hoard = bytearray(1 << 40)
