# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: json, and pickle used only to save.
import json
import pickle

def save(obj, path):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)

SETTINGS = json.loads("{}")
