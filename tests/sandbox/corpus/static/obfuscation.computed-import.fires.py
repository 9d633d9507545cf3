# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates a loader importing modules by computed names.
import importlib

def load(names):
    return [importlib.import_module(f".{name}", __package__) for name in names]
