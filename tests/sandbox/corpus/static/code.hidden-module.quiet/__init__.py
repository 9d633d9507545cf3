# Inert sample: a loader of .py files, and a vocabulary that is only words.
# ruff: noqa
import importlib.util, os
spec = importlib.util.spec_from_file_location("v", os.path.join(os.path.dirname(__file__), "extra.py"))
