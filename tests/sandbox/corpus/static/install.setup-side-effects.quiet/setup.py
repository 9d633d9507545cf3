# ruff: noqa
# Look-alike: a plain setup.py that declares the package and reads its README.
from pathlib import Path
from setuptools import find_packages, setup

setup(name="inert-sample", version="0.1.0", packages=find_packages(),
      long_description=Path("README.md").read_text() if Path("README.md").exists() else "")
