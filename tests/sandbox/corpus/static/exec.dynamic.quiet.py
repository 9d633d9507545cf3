# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: model.eval(), re.compile() and a literal eval are not dynamic code.
import ast
import re

def prepare(model, text):
    model.eval()
    pattern = re.compile(text)
    table = ast.literal_eval("[1, 2]")
    return eval("1 + 2"), pattern, table
