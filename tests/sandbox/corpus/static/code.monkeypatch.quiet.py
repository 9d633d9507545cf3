# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: setattr on a node class, attributes on our own objects.
class Node:
    pass

setattr(Node, "CATEGORY", "image")
Node.FUNCTION = "run"
