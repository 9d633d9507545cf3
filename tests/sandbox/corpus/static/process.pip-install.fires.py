# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates installing a package at run time.
import subprocess
import sys

def ensure():
    subprocess.check_call([sys.executable, "-m", "pip", "install", "some-package"])
