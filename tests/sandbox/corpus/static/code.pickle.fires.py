# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: a pickle loaded from a file the pack ships.
import pickle
import marshal

def load(path):
    with open(path, "rb") as fh:
        return pickle.loads(fh.read())

CODE = marshal.loads(b"")
