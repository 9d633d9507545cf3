"""``make-tiny-lora --base FILE --out FILE``: a tiny kohya LoRA for a given checkpoint, until ``comfy models
make-tiny`` can pass a base file to the ``register_tiny_models`` writers."""

from __future__ import annotations

from pathlib import Path

import click

from hearth.core.models import CheckpointError

from .tiny import make_tiny_lora as write


@click.command("make-tiny-lora")
@click.option("--base", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The checkpoint the LoRA is for (a tiny one from make-tiny; only its header is read).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the .safetensors file.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights.")
@click.option("--unmatched-key", is_flag=True, help="Add one module that no SD model has (to see the warning).")
def make_tiny_lora(base: Path, out: Path, seed: int, unmatched_key: bool) -> None:
    """Write a tiny LoRA (kohya format, rank 4) for the checkpoint --base, for tests and demos."""
    if out.suffix != ".safetensors":
        raise click.UsageError(f"--out {out}: the file name must end in .safetensors")
    try:
        path = write(base, out, seed, unmatched_key=unmatched_key)
    except (CheckpointError, ValueError) as exc:
        raise click.UsageError(f"--base {base}: {exc}") from None
    click.echo(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, LoRA for {base.name}, seed {seed})")
