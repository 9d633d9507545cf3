# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: telling the user to run pip install, without running it.
def hint():
    print("missing dependency: run `pip install some-package`")
    return "pip install some-package"
