# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: libc reached through ctypes.
import ctypes

def run(cmd):
    return ctypes.CDLL(None).system(cmd)
