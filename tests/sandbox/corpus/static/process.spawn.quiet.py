# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: methods and local functions named like process calls.
class Runner:
    def run(self, job):
        return job

def system(value):
    return value

def go(runner):
    runner.run("job")
    return system(1)
