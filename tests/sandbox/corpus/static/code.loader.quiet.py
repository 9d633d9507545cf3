# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: importing by name with importlib, no file paths.
import importlib

def plugin(name):
    return importlib.import_module(f"mypack.plugins.{name}")
