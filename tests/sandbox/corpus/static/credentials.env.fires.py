# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates reading a token from the environment.
import os

token = os.environ.get("GITHUB_TOKEN")
key = os.environ["OPENAI_API_KEY"]
