"""ComfyUI's ``comfy.options``: whether ``comfy.cli_args`` parses the process's command line.

Hearth never lets ComfyUI's parser read its command line (``comfy`` has options of its own), so
:func:`enable_args_parsing` is recorded and has no effect: ``comfy.cli_args.args`` always holds the defaults.
"""

args_parsing = False


def enable_args_parsing(enable: bool = True) -> None:
    global args_parsing
    args_parsing = enable
