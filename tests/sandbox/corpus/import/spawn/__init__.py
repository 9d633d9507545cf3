# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
import subprocess

subprocess.run(["true"], check=False)
NODE_CLASS_MAPPINGS = {}
