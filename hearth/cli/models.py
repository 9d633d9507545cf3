"""``comfy models``: ``make-tiny`` over the ``register_tiny_models`` hook, and the model-folder options of run/serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hearth.cli.common import JsonStdout, custom_nodes_option, runtime_for
from hearth.cli.main import UserError
from hearth.core.model_folders import ModelFolders, TinyModel, write_tiny_model, write_tiny_models


def model_folder_options(fn: Any) -> Any:
    """``--models-dir`` and ``--extra-model-paths-config``, for every command that runs nodes."""
    fn = click.option("--extra-model-paths-config", "extra_model_paths", multiple=True, metavar="FILE",
                      type=click.Path(dir_okay=False, path_type=Path),
                      help="ComfyUI's extra_model_paths.yaml: more folders per model kind (repeatable).")(fn)
    return click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
                        show_default=True,
                        help="Base folder of model files (checkpoints/, vae/, loras/... as in ComfyUI).")(fn)


def tiny_models(custom_nodes: tuple[Path, ...] = ()) -> dict[str, TinyModel]:
    """Every tiny model the loaded plugins offer, by name."""
    plugins = runtime_for(custom_nodes).plugins
    return dict(sorted(plugins.resolve_named("register_tiny_models", "tiny model").items()))


@click.command("make-tiny")
@click.argument("name", required=False)
@click.option("--out", type=click.Path(path_type=Path),
              help="Write one model to this file (a bundle such as wan: into this folder, as a models folder).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write into this models folder, under the standard subfolder and file name.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
@click.option("--base", type=click.Path(dir_okay=False, path_type=Path),
              help="Make the model fit this existing model file (for example a LoRA for a checkpoint).")
@click.option("--json", "as_json", is_flag=True, help="Without NAME: list the tiny models as JSON.")
@custom_nodes_option
def make_tiny(name: str | None, out: Path | None, models_dir: Path | None, seed: int, base: Path | None,
              as_json: bool, custom_nodes: tuple[Path, ...]) -> None:
    """Write a tiny model NAME (random weights, real layout, a few MB) for tests and demos; "all" writes every
    one into --models-dir under the file names the example workflows use. Without NAME, list them."""
    listing = as_json and name is None
    with JsonStdout(listing) as stdout:  # with --json, what packs print while loading goes to stderr
        models = tiny_models(custom_nodes)
        if listing:
            stdout.emit({key: {"kind": m.kind, "filename": m.filename, "description": m.description,
                            **({"parts": list(m.parts)} if m.parts else {})}
                      for key, m in models.items()})
            return
    if name is None:
        from rich.console import Console  # deferred: `comfy run` imports this module for its folder options
        from rich.table import Table

        table = Table("name", "file under --models-dir", "what it is")
        for column in table.columns[:2]:
            column.no_wrap = True  # whole names, so `comfy models make-tiny | grep NAME` finds them at 80 columns
        for key, model in models.items():
            where = f"{len(model.parts)} files: {', '.join(model.parts)}" if model.parts else f"{model.kind}/{model.filename}"
            table.add_row(key, where, model.description)
        Console().print(table)
        return
    if name != "all" and name not in models:
        raise UserError(f"no tiny model {name!r}; choose one of: all, {', '.join(models) or '(none installed)'}")
    if (out is None) == (models_dir is None):
        raise UserError("give exactly one of --out FILE or --models-dir DIR")
    if base is not None:
        if name == "all" or models[name].write_for is None:
            raise UserError(f"--base: the tiny model {name!r} is not made to fit another file")
        if not base.is_file():
            raise UserError(f"--base {base}: no such file")
    if name == "all":
        if out is not None:
            raise UserError("make-tiny all writes several files: use --models-dir DIR")
        written = write_tiny_models(models_dir, {k: m for k, m in models.items() if not m.parts}, seed)
    elif models[name].parts:
        # A bundle (a model in several files): --out DIR is a models folder of its own, as --models-dir is.
        missing = [p for p in models[name].parts if p not in models]
        if missing:
            raise UserError(f"the tiny model {name!r} needs {', '.join(missing)}, which no installed plugin offers")
        if out is not None and out.exists() and not out.is_dir():
            raise UserError(f"--out {out}: a {name} model is several files; give a folder")
        written = write_tiny_models(out or models_dir, {p: models[p] for p in models[name].parts}, seed)
    elif base is not None:
        model = models[name]
        target = out or (ModelFolders(models_dir).folders(model.kind)[0] / model.filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        model.write_for(base, target, seed)
        written = [(name, target)]
    else:
        model = models[name]
        suffix = Path(model.filename).suffix
        if out is not None and out.is_dir():
            raise UserError(f"--out {out}: is a folder; a {name} model is one {suffix} file")
        if out is not None and out.suffix != suffix:
            raise UserError(f"--out {out}: a {name} model is a {suffix} file; name it so")
        if out is None:
            written = write_tiny_models(models_dir, {name: model}, seed, bases=models)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_tiny_model(models, name, out, seed)
            written = [(name, out)]
    for name, path in written:
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {name}, seed {seed})")
