# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: getattr on an object and over a literal list of names.
import math

FUNCS = {name: getattr(math, name) for name in ("floor", "ceil")}

def option(node, name):
    return getattr(node, name, None)
