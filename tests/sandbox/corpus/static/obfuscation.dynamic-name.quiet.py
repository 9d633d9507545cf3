# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: getattr on an object, on numpy by dtype name, over a literal list of names; registering a module.
import math

import numpy as np

FUNCS = {name: getattr(math, name) for name in ("floor", "ceil")}

def option(node, name):
    return getattr(node, name, None)


def dtype(name):
    return getattr(np, name)


def register(sys_modules, name, module):
    import sys
    sys.modules[name] = module
    globals()[name] = module
