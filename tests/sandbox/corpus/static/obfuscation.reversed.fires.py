# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates a name hidden by reversing it (it reads inert).
NAME = "treni"[::-1]
OTHER = "".join(reversed("treni"))
