# ruff: noqa
# Inert sample pack for the sandbox tests. It is only ever imported inside the isolated child.
raise ImportError("sample pack needs a dependency that is not installed")
