# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates a name hidden in chr() codes (it spells inert).
NAME = "".join(chr(c) for c in [105, 110, 101, 114, 116])
OTHER = chr(105) + chr(110) + chr(101) + chr(114) + chr(116)
