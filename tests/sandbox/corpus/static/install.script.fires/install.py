# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates an install.py that runs pip.
import subprocess
import sys

subprocess.run([sys.executable, "-m", "pip", "install", "-r", "requirements.txt"])
