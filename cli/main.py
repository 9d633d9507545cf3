"""Entry point of the ``comfy`` command: the command groups, and one error style for every command."""

from __future__ import annotations

import sys
import traceback

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
    """Every failure becomes one line with exit code 2; ``--debug`` adds the traceback."""

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


def _add_commands() -> None:
    from cli import info, run

    cli.add_command(run.run)
    cli.add_command(info.nodes)
    cli.add_command(info.plugins)
    from cli import scan
    node.add_command(scan.scan)
    from cli import serve
    cli.add_command(serve.serve)
    from cli import registry
    cli.add_command(registry.registry)
    from cli import models as model_commands
    models.add_command(model_commands.make_tiny)
    from cli import search
    cli.add_command(search.search)
    cli.add_command(search.info)
    from cli import env as env_commands
    from cli import install as install_commands
    cli.add_command(env_commands.env)
    for command in (install_commands.install, install_commands.uninstall, install_commands.update,
                    install_commands.list_, install_commands.lock, install_commands.sync):
        cli.add_command(command)
    from cli import author
    cli.add_command(author.login)
    for command in (author.init, author.validate, author.pack, author.publish):
        node.add_command(command)


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
