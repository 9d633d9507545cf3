"""Options and helpers shared by the commands that load plugins (run, serve, nodes, plugins)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from hearth.cli.main import UserError
from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime
from hearth.core.trust import TrustPolicy


def custom_nodes_option(fn: Any) -> Any:
    return click.option(
        "--custom-nodes", "custom_nodes", multiple=True, type=click.Path(file_okay=False, path_type=Path),
        help="Folder of ComfyUI-format packs to load (repeatable; default ./custom_nodes when it exists, "
             "or $HEARTH_CUSTOM_NODES).")(fn)


def custom_nodes_folders(given: tuple[Path, ...]) -> list[Path]:
    if given:
        for folder in given:
            if not folder.is_dir():
                raise UserError(f"--custom-nodes {folder}: no such folder")
        return list(given)
    env = os.environ.get("HEARTH_CUSTOM_NODES")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    default = Path("custom_nodes")
    return [default] if default.is_dir() else []


def isolation_option(fn: Any) -> Any:
    return click.option(
        "--isolation", "isolation", metavar="untrusted|all|off", default=None,
        help="Where custom-node packs run. untrusted: packs you have not trusted (comfy trust) run isolated in a "
             "pack host, with no network, no secrets and a read-only view of the machine; all: every pack but "
             "Hearth's own runs isolated; off: every pack runs in Hearth's process with your full rights, at your "
             "own risk. Default: $HEARTH_ISOLATION, else untrusted.")(fn)


def trust_policy_for(isolation: str | None, custom_nodes: list[Path]) -> TrustPolicy:
    """The policy a command runs under: ``--isolation`` (or $HEARTH_ISOLATION), the user's trust file, and the
    registries' publisher trust recorded by installs where the user opted in; a bad value is a one-line error."""
    from hearth.registry.config import ConfigError
    from hearth.registry.trust import policy_for

    try:
        return policy_for(isolation, custom_nodes=custom_nodes)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def check_isolation(isolation: str | None) -> str:
    """The isolation mode ``--isolation`` (or $HEARTH_ISOLATION, else untrusted) means; a bad one is an error."""
    from hearth.registry.config import ConfigError
    from hearth.registry.trust import isolation_mode

    try:
        return isolation_mode(isolation)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def env_option(fn: Any) -> Any:
    return click.option(
        "--env", "env_name", metavar="NAME",
        help="Load exactly this environment's plugins: its installed packs and its custom_nodes/ (or the "
             "--custom-nodes folders), instead of every plugin this Python sees.")(fn)


@dataclass(frozen=True)
class PluginSource:
    """Where a command's plugins come from: this Python's entry points, or one environment's folders."""

    custom_nodes: list[Path]
    site_packages: list[Path] | None = None
    env_name: str | None = None


def plugin_source(custom_nodes: tuple[Path, ...], env_name: str | None) -> PluginSource:
    """Without ``--env``: every entry point plus ./custom_nodes (as always). With it: the environment's own.

    ``--custom-nodes`` replaces the environment's custom_nodes/ folder when given. ``--env`` never creates an
    environment: a name that does not exist is an error naming the ones that do.
    """
    if env_name is None:
        return PluginSource(custom_nodes_folders(custom_nodes))
    from hearth.registry.envs import EnvironmentError_, get_environment

    try:
        # One reading of the current generation: an install switching meanwhile cannot mix two generations.
        paths = get_environment(env_name, create=False).paths()
        site_packages, own_nodes = Path(paths.site_packages), Path(paths.custom_nodes)
    except EnvironmentError_ as exc:
        raise UserError(f"--env {env_name}: {exc}") from None
    expected = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not site_packages.is_dir():
        lib = site_packages.parent.parent
        found = sorted(p.name for p in lib.glob("python*")) if lib.is_dir() else []
        made_for = f" (it was made for {', '.join(found)})" if found else ""
        raise UserError(f"--env {env_name}: {site_packages} is missing{made_for}; Hearth runs on {expected}: "
                        f"remove it with `comfy env remove {env_name}` and create it again")
    folders = custom_nodes_folders(custom_nodes) if custom_nodes else [own_nodes]
    return PluginSource(folders, [site_packages], env_name)


def pack_host_api() -> Any:
    """The pack host API the CLI lends every Runtime it builds (``RuntimeOptions.pack_hosts``): the sandbox's,
    imported when a pack first needs it (a command answered from the node catalogue never does)."""
    return _SandboxHosts()


class _SandboxHosts:
    """``hearth.sandbox.host``, imported on first attribute access."""

    def __getattr__(self, name: str) -> Any:
        from hearth.sandbox import host

        return getattr(host, name)


def runtime_for(custom_nodes: tuple[Path, ...] = (), env_name: str | None = None, *, quiet: bool = False,
                load: bool = True, models_dir: Path = Path("models"), extra_model_paths: tuple[Path, ...] = (),
                cache: str = "classic", vram_mb: int | None = None, output: Path = Path("output"),
                input: Path = Path("input"), temp: Path | None = None, isolation: str | None = None) -> Runtime:
    """The Runtime a command's options describe: how run, serve, nodes, plugins and make-tiny all build theirs.

    Bad options are one-line user errors, in the order a user reads them: ``--cache``, a missing
    ``--extra-model-paths-config`` file, ``--isolation`` (or $HEARTH_ISOLATION and the trust file), ``--env``,
    then a bad extra model paths file. With ``load``, plugins load now (inside the Runtime) and, unless ``quiet``,
    each one that failed is named on stderr. ``isolation``: the ``--isolation`` value (None: the default).
    """
    if cache != "classic":  # the default is known good: `comfy nodes` need not import the executor to say so
        from hearth.core.executor.cache import make_cache

        try:
            make_cache(cache)
        except ValueError as exc:
            raise UserError(f"--cache: {exc}") from None
    for config in extra_model_paths:
        if not config.is_file():
            raise UserError(f"--extra-model-paths-config {config}: no such file")
    check_isolation(isolation)  # a bad --isolation (or $HEARTH_ISOLATION) is named before a missing environment
    source = plugin_source(custom_nodes, env_name)  # a missing environment fails here, before anything starts
    # Absolute: a pack host runs elsewhere than this working folder, and the folders are exposed to it by path.
    source = replace(source, custom_nodes=[folder.absolute() for folder in source.custom_nodes])
    trust = trust_policy_for(isolation, source.custom_nodes)
    try:
        runtime = Runtime.build(models_dir=models_dir.resolve(), extra_model_paths=extra_model_paths,
                                custom_nodes=source.custom_nodes, site_packages=source.site_packages, cache=cache,
                                vram_mb=vram_mb, output=output, input=input, temp=temp, trust=trust,
                                pack_hosts=pack_host_api())
    except ValueError as exc:
        raise UserError(f"--extra-model-paths-config: {exc}") from None
    if load:
        report_plugin_errors(runtime.plugins, quiet)
    return runtime


def report_plugin_errors(plugins: PluginManager, quiet: bool = False) -> None:
    if not quiet:
        from hearth.cli.catalogued import report_failed

        report_failed(plugins.records.values())


def read_json(path: Path) -> Any:
    from hearth.core.executor.workflow import WorkflowFileError, read_workflow_file

    try:
        return read_workflow_file(path)
    except WorkflowFileError as exc:
        raise UserError(str(exc)) from None


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class JsonStdout:
    """Standard output that carries exactly one JSON document, whatever the packs print.

    Packs print while they load and run -- with ``print``, through ``sys.stdout``, with ``os.write(1, ...)`` from
    C code, or from subprocesses that inherit descriptor 1 -- and ComfyUI lets all of it reach the terminal. For a
    ``--json`` command that would put text before (or after) the document, so the whole command runs inside this
    guard: ``sys.stdout`` is ``sys.stderr``, and descriptor 1 is a copy of descriptor 2 (children inherit that), so
    everything else written to standard output lands on standard error. :meth:`emit` writes the document to the
    real standard output, which the guard keeps aside.

    When standard output is the process's own (descriptor 1, as for ``comfy ... --json | jq``), descriptor 1 stays
    on standard error after the guard: a pack's thread or exit handler printing later cannot trail the document.
    When it is not (``CliRunner`` in tests, an embedding program), descriptor 1 is put back on leaving and the
    document goes to the ``sys.stdout`` the guard found. Disabled (``JsonStdout(False)``), it changes nothing and
    :meth:`emit` is :func:`echo_json`, so a command can use one code path for both forms.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stdout: Any = None
        self._saved_fd: int | None = None
        self._process_stdout = False
        self._pending: str | None = None

    def __enter__(self) -> JsonStdout:
        if not self.enabled:
            return self
        self._stdout = sys.stdout
        self._process_stdout = _is_descriptor_1(sys.stdout)
        for stream in (sys.stdout, sys.__stdout__):
            _flush(stream)  # what was written before the guard belongs on standard output
        try:
            self._saved_fd = os.dup(1)
            os.dup2(2, 1)
        except OSError:  # no descriptor 1 or 2 (a detached process): only the Python-level redirection applies
            self._saved_fd = None
        sys.stdout = sys.stderr
        return self

    def emit(self, data: Any) -> None:
        """Write ``data`` as the command's one JSON document."""
        self.emit_text(json.dumps(data, indent=2, default=str))

    def emit_text(self, document: str) -> None:
        """Write an already encoded JSON document (as :meth:`emit` encodes one) as the command's one document."""
        text = document + "\n"
        if not self.enabled:
            click.echo(text, nl=False)
        elif self._process_stdout and self._saved_fd is not None:
            for stream in (sys.__stdout__, sys.stderr):
                _flush(stream)  # the packs' buffered output goes out first, to standard error
            _write_all(self._saved_fd, text.encode("utf-8"))
        else:
            self._pending = text  # written once the guard is gone, to the sys.stdout it found

    def __exit__(self, *exc: Any) -> None:
        if not self.enabled:
            return
        for stream in (sys.stdout, sys.__stdout__, sys.stderr):
            _flush(stream)
        if sys.stdout is sys.stderr:
            sys.stdout = self._stdout
        if self._saved_fd is not None and not self._process_stdout:
            os.dup2(self._saved_fd, 1)
            os.close(self._saved_fd)
            self._saved_fd = None
        if self._pending is not None and self._stdout is not None:
            self._stdout.write(self._pending)
            _flush(self._stdout)
            self._pending = None


def _is_descriptor_1(stream: Any) -> bool:
    try:
        return stream.fileno() == 1
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return False


def _flush(stream: Any) -> None:
    try:
        if stream is not None:
            stream.flush()
    except (OSError, ValueError):
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
