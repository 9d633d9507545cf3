# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: ordinary configuration variables.
import os

home = os.environ.get("HF_HOME")
devices = os.getenv("CUDA_VISIBLE_DEVICES", "")
