# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: a data file read as data.
import os

HERE = os.path.dirname(__file__)
with open(os.path.join(HERE, "data", "vocab.txt"), encoding="utf-8") as fh:
    VOCAB = fh.read().split()
