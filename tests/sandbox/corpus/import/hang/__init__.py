# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
import time

time.sleep(600)
