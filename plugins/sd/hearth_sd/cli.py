"""The ``make-tiny`` command, for the lead's ``comfy models`` group: ``comfy models make-tiny sd1 --out F``."""

from __future__ import annotations

from pathlib import Path

import click

from .tiny import TINY_FAMILIES, make_tiny_checkpoint


@click.command("make-tiny")
@click.argument("family", type=click.Choice(TINY_FAMILIES))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the .safetensors file.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
def make_tiny(family: str, out: Path, seed: int) -> None:
    """Write a tiny FAMILY checkpoint (random weights, real key layout, a few MB) for tests and demos."""
    if out.suffix != ".safetensors":
        raise click.UsageError(f"--out {out}: the file name must end in .safetensors")
    path = make_tiny_checkpoint(family, out, seed=seed)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {family}, seed {seed})")
