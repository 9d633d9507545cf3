# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: the same request made only when a node runs.
import requests

def fetch_config():
    return requests.get("https://example.invalid/config.json", timeout=1)
