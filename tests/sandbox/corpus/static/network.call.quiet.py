# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: a node that only formats a URL for the user to open.
import urllib.parse

class Link:
    def run(self, text):
        return ("https://example.invalid/search?q=" + urllib.parse.quote(text),)
