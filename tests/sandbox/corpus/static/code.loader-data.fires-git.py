# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: code kept under .git/ loaded by path.
import importlib.util
import os

spec = importlib.util.spec_from_file_location("hook", os.path.join(os.path.dirname(__file__), ".git", "hooks", "post.py"))
