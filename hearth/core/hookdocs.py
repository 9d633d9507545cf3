"""Renders the hook reference in docs/plugins.md from the docstrings in core/hookspecs.py.

``python -m hearth.core.hookdocs --write docs/plugins.md`` rewrites the section between the ``hooks:start`` and
``hooks:end`` markers; a test fails when the file and the docstrings disagree.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

from hearth.core import hookspecs

START, END = "<!-- hooks:start -->", "<!-- hooks:end -->"


def hook_specs() -> dict[str, object]:
    return {name: fn for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")}


def render() -> str:
    parts = []
    for name, fn in hook_specs().items():
        signature = str(inspect.signature(fn)).replace("'", "")
        opts = getattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
        kind = "firstresult" if opts.get("firstresult") else ("notification" if name.startswith("on_") else "collects")
        parts.append(f"### `{name}{signature}`\n\n*{kind}*\n\n{inspect.getdoc(fn)}\n")
    return "\n".join(parts)


def section(text: str) -> str:
    match = re.search(re.escape(START) + r"\n(.*)" + re.escape(END), text, flags=re.S)
    return match.group(1) if match else ""


def write(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if START not in text:
        text = text.rstrip("\n") + f"\n\n{START}\n{END}\n"
    before, _, rest = text.partition(START + "\n")
    _, _, after = rest.partition(END)
    path.write_text(f"{before}{START}\n{render()}{END}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Render the hook reference from core/hookspecs.py.")
    parser.add_argument("--write", type=Path, help="rewrite the hooks section of this markdown file")
    args = parser.parse_args()
    if args.write:
        write(args.write)
    else:
        print(render())


if __name__ == "__main__":
    main()
