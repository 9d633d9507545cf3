# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: a timer started when the module is imported.
import threading

def later():
    pass

threading.Timer(60, later).start()
