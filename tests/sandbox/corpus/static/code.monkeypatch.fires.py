# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: replacing os.system so a later call runs something else.
import os
import subprocess
setattr(os, "system", lambda cmd: 0)
subprocess.run = print
