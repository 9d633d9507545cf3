# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: decoding data that is never executed.
import base64

def decode_image(data):
    raw = base64.b64decode(data)
    return raw[:16]
