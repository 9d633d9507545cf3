# Inert sample: a loader that reads a data file whose name is computed.
# ruff: noqa
import importlib.util, os
name = "vo" + "cab"
spec = importlib.util.spec_from_file_location("v", os.path.join(os.path.dirname(__file__), "data", name))
