# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: a class attribute named builtins and a plain print.
class Options:
    builtins = ("print", "len")

print(Options.builtins)

builtins = {"len": len}
builtins.get("len")
