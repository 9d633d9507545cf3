"""The ``make-tiny`` command, for the lead's ``comfy models`` group: ``comfy models make-tiny sd1 --out F``."""

from __future__ import annotations

from pathlib import Path

import click

from .tiny import TINY_FAMILIES, make_tiny_checkpoint, make_tiny_models, tiny_checkpoint_name


@click.command("make-tiny")
@click.argument("family", type=click.Choice([*TINY_FAMILIES, "all"]))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the .safetensors file (one family).")
@click.option("--models-dir", "models_dir", type=click.Path(file_okay=False, path_type=Path),
              help="A models folder: files go to its checkpoints/ subfolder under their standard names.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
def make_tiny(family: str, out: Path | None, models_dir: Path | None, seed: int) -> None:
    """Write a tiny FAMILY checkpoint (random weights, real key layout, a few MB) for tests and demos.

    FAMILY "all" writes every family into --models-dir.
    """
    if (out is None) == (models_dir is None):
        raise click.UsageError("give exactly one of --out FILE.safetensors or --models-dir DIR")
    if family == "all" and out is not None:
        raise click.UsageError("make-tiny all writes several files: use --models-dir DIR")
    if out is not None and out.suffix != ".safetensors":
        raise click.UsageError(f"--out {out}: the file name must end in .safetensors")
    if family == "all":
        written = list(make_tiny_models(models_dir, seed=seed).items())
    else:
        path = out or models_dir / "checkpoints" / tiny_checkpoint_name(family)
        written = [(family, make_tiny_checkpoint(family, path, seed=seed))]
    for name, path in written:
        click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {name}, seed {seed})")
