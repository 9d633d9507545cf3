# ruff: noqa
# Look-alike: a module with "install" in its name, not an install script.
import subprocess

def install_hint():
    return "pip install numpy"
