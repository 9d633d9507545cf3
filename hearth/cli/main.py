"""Entry point of the ``comfy`` command: the command groups, and one error style for every command."""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Any

import click


class UserError(click.ClickException):
    """An error the user can fix: printed as one line, exit code 2, no traceback (unless ``--debug``)."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True)


def _one_line_usage_error(exc: click.UsageError) -> UserError:
    where = exc.ctx.command_path if exc.ctx is not None else "comfy"
    return UserError(f"{exc.format_message()} (see `{where} --help`)")


class HearthGroup(click.Group):
    """Every failure becomes one line with exit code 2; ``--debug`` adds the traceback.

    ``lazy`` maps command names to ``"module:attribute"``: the module is imported when the command is first used.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, str] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: ANN001, ANN201 - click's signature
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _one_line_usage_error(exc) from exc

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.UsageError as exc:
            if debug:
                traceback.print_exc()
            raise _one_line_usage_error(exc) from exc
        except click.ClickException:
            if debug:
                traceback.print_exc()
            raise
        except Exception as exc:
            if debug:
                traceback.print_exc()
            raise UserError(f"{type(exc).__name__}: {exc}") from exc


@click.group(cls=HearthGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="comfy-hearth", prog_name="comfy")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Hearth: run diffusion-model node graphs and share the nodes that make them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.group(cls=HearthGroup)
def node() -> None:
    """Author node packs: init, validate, scan, pack and publish."""


@cli.group(cls=HearthGroup)
def models() -> None:
    """Model files: make tiny test checkpoints."""


# Commands import their module on first use: `comfy sync` must not pay for importing the executor, the server or
# the sandbox. `comfy --help` lists them all (and so imports them all).
LAZY_COMMANDS = {
    "run": "hearth.cli.run:run", "nodes": "hearth.cli.info:nodes", "plugins": "hearth.cli.info:plugins", "serve": "hearth.cli.serve:serve",
    "registry": "hearth.cli.registry:registry", "search": "hearth.cli.search:search", "info": "hearth.cli.search:info",
    "env": "hearth.cli.env:env", "install": "hearth.cli.install:install", "uninstall": "hearth.cli.install:uninstall",
    "update": "hearth.cli.install:update", "list": "hearth.cli.install:list_", "lock": "hearth.cli.install:lock",
    "sync": "hearth.cli.install:sync", "login": "hearth.cli.author:login",
    "trust": "hearth.cli.trust:trust", "untrust": "hearth.cli.trust:untrust",
}
LAZY_NODE_COMMANDS = {
    "scan": "hearth.cli.scan:scan", "init": "hearth.cli.author:init", "validate": "hearth.cli.author:validate",
    "pack": "hearth.cli.author:pack", "publish": "hearth.cli.author:publish",
}
LAZY_MODELS_COMMANDS = {"make-tiny": "hearth.cli.models:make_tiny"}


def _add_commands() -> None:
    cli.lazy.update(LAZY_COMMANDS)
    node.lazy.update(LAZY_NODE_COMMANDS)
    models.lazy.update(LAZY_MODELS_COMMANDS)


_add_commands()


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode click returns ctx.exit(n)'s code instead of exiting: pass it on.
        code = cli.main(args=argv, prog_name="comfy", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
