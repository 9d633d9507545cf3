# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates a setup.py that runs code.
import os
from setuptools import setup

os.system("echo inert")
setup(name="inert-sample", version="0.1.0")
