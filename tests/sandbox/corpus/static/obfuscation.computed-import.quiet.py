# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: importing a module named literally.
import importlib

json_module = importlib.import_module("json")
