# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: code loaded from a data file.
import os
from importlib.machinery import SourceFileLoader

HERE = os.path.dirname(__file__)
vocab = SourceFileLoader("vocab", os.path.join(HERE, "data", "vocab.txt")).load_module()
