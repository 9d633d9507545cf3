# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: downloading model weights and an image.
MODEL_URL = "https://huggingface.co/example/model/resolve/main/model.safetensors"
PREVIEW = "https://example.invalid/preview.png"
DOCS = "https://example.invalid/docs/install.html"

from urllib.request import urlretrieve


def fetch(mirror):
    urlretrieve(mirror() + "/model", "model.safetensors")
