# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: reading one named variable, changing one, and copying the environment for a child.
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
threads = os.environ.get("OMP_NUM_THREADS", "1")

child_env = dict(os.environ)
child_env["PYTHONUNBUFFERED"] = "1"
child_env_too = {**os.environ, "PYTHONUNBUFFERED": "1"}
