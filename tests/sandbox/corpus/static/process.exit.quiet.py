# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: sys.exit in a script entry point and os.path.exists.
import os
import sys

def main():
    if not os.path.exists("x"):
        sys.exit(1)
