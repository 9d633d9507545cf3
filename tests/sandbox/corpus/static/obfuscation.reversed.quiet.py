# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: reversing a variable, such as a list of layers.
def backwards(layers):
    return layers[::-1]
