# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: a lock at import, a thread only when a node runs.
import threading

LOCK = threading.Lock()

def run():
    worker = threading.Thread(target=print)
    worker.start()
    worker.join()
