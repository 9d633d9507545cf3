# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates starting another program.
import os
from subprocess import Popen as P

def go():
    P(["echo", "inert"])
    os.system("echo inert")
