# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: one chr() to label a column, and a table of characters over a range.
def column_label(index):
    return chr(ord("A") + index)


LETTERS = "".join(chr(code) for code in range(ord("a"), ord("z") + 1))
SYMBOLS = list(map(chr, range(0x2500, 0x2580)))
