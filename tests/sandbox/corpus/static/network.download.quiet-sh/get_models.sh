#!/bin/sh
# Look-alike: a script that fetches model weights.
curl -L -o model.safetensors https://huggingface.co/example/model/resolve/main/model.safetensors
