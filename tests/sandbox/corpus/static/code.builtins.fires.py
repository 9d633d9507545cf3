# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Fires: exec fetched from the builtins namespace.
import builtins
runner = getattr(builtins, "exec")
alt = __builtins__["eval"]
