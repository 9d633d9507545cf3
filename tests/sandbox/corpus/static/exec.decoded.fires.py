# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates a payload decoded from base64 and executed (the payload only prints).
import base64
import zlib

blob = base64.b64decode("cHJpbnQoJ2luZXJ0IHNhbXBsZScp")
exec(blob)
exec(zlib.decompress(b"x\x9c+(\xca\xcc+\xd1P\xcf\xccK-*Q\xd7\x04\x00&\xaa\x04\xc9"))
