# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates a request made while the module is imported.
import requests

CONFIG = requests.get("https://example.invalid/config.json", timeout=1)
