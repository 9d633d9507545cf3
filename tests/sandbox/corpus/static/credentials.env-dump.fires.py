# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates copying the whole environment.
import json
import os

snapshot = json.dumps(dict(os.environ))
for name, value in os.environ.items():
    pass
