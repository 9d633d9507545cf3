# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: the same request made only when a node runs; library setup at import.
import requests

requests.packages.urllib3.disable_warnings()
SESSION_HEADERS = requests.utils.default_headers()

def fetch_config():
    return requests.get("https://example.invalid/config.json", timeout=1)
