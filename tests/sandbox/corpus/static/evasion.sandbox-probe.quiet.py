# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: reading an ordinary setting and a file of the pack.
import os
import socket

HOST = socket.gethostname
MODELS = os.environ.get("HF_HOME", "models")
STATUS_FILE = "status.json"
