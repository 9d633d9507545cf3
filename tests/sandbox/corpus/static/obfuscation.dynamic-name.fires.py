# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates reaching a function through a computed name.
import os

def call(part):
    fn = getattr(os, "sys" + part)
    mod = __import__(part[::1])
    return fn, mod, globals()[part]
