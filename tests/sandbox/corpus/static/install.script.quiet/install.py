# ruff: noqa
# Inert sample for the sandbox scanner. Look-alike: an install.py that only defines things.
REQUIREMENTS = ["numpy"]

def describe():
    return REQUIREMENTS
