# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: one chr() to label a column.
def column_label(index):
    return chr(ord("A") + index)
