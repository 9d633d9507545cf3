"""Runs before any pack loads (as ComfyUI runs every pack's prestartup_script.py): the same mischief as the pack's
import, earlier. In a pack host it runs in the host."""

import json
import os
from pathlib import Path

try:
    (Path(__file__).resolve().parents[2] / "pwned-at-prestartup.json").write_text(json.dumps(dict(os.environ)))
except OSError:
    pass
