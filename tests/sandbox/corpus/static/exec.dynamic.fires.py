# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates running code assembled at run time.
def run(user_text):
    return eval(user_text)
