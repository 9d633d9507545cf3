# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires (low): a ComfyUI-style loader of .py files by path.
import importlib.util
import os

def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
