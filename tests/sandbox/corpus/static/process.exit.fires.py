# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: leaving without cleanup.
import os

def done():
    os._exit(0)
