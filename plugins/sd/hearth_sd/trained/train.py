"""``python -m hearth_sd.trained.train``: train the miniature SD1.x "shapes" model and its outlined-style LoRA on CPU.

Three stages, each printing its loss curve: the VAE (:mod:`.train_vae`), the UNet with the CLIP text encoder
(:mod:`.train_diffusion`), the LoRA (:mod:`.train_lora`). The result is two files in ``--out``: an SD1.x checkpoint
in the real layout (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``) for
CheckpointLoaderSimple, and a kohya LoRA for LoraLoader. The same options and seed give the same files (one thread
count, deterministic algorithms, every random draw from one seeded generator).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.utils.deterministic

from hearth.core.models import write_safetensors

from ..checkpoint import CONFIG_METADATA_KEY
from ..families import SD1
from ..formats import PREDICTION_METADATA_KEY, UNET_PREFIX, VAE_PREFIX
from .shapes import BACKGROUND, COLOURS, make_shapes
from .train_diffusion import train_diffusion
from .train_lora import train_lora
from .train_vae import (
    LATENT_SCALE,
    background_distances,
    encode_means,
    normalize_latents,
    to_pixels,
    train_vae,
)

CHECKPOINT_NAME = "hearth-shapes-sd1.safetensors"
LORA_NAME = "hearth-shapes-outlined-lora.safetensors"
# Where the shipped files live: a models folder (checkpoints/, loras/) that --models-dir can point at.
SHIPPED_DIR = Path(__file__).parent / "models"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hearth_sd.trained.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=SHIPPED_DIR,
                   help="models folder to write checkpoints/ and loras/ into (default: the shipped one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=4000, help="filled training images (and a quarter as many outlined)")
    p.add_argument("--vae-steps", type=int, default=2500)
    p.add_argument("--unet-steps", type=int, default=4200)
    p.add_argument("--lora-steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2,
                   help="torch CPU threads, fixed for reproducible sums (use 1 on a busy machine: spare threads spin)")
    return p


def _check_out(out: Path) -> None:
    try:
        for sub in ("checkpoints", "loras"):
            (out / sub).mkdir(parents=True, exist_ok=True)
            probe = out / sub / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
    except OSError as err:
        raise SystemExit(f"error: cannot write to --out {out}: {err.strerror or err}. "
                         "Pass a folder you can write to, e.g. --out /tmp/shapes-models") from None


def checkpoint_tensors(vae: torch.nn.Module, unet: torch.nn.Module, text: torch.nn.Module
                       ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The SD1.x file's tensors (fp16) and metadata: the layout and config keys the tiny maker writes."""
    spec = SD1.text_encoders[0]
    parts = ((UNET_PREFIX, unet), (VAE_PREFIX, vae), (spec.prefix, text))
    tensors = {prefix + k: v.detach().to(torch.float16).contiguous()
               for prefix, module in parts for k, v in module.state_dict().items()}
    config = {"unet": {"num_heads": unet.config.num_heads, "num_head_channels": unet.config.num_head_channels},
              "text_heads": {spec.name: text.config.heads}}
    metadata = {
        CONFIG_METADATA_KEY: json.dumps(config, sort_keys=True),
        PREDICTION_METADATA_KEY: "epsilon",
        "hearth.sd.family": SD1.name,
        "hearth.sd.trained": "the shapes data set (hearth_sd.trained.shapes); see the model card beside the file",
    }
    return tensors, metadata


def train(args: argparse.Namespace) -> dict[str, Path]:
    """Run the three stages; returns the paths written. Torch's thread count and determinism flags are restored.

    Deterministic mode also fills every new tensor with NaN by default, to expose reads of memory nothing wrote;
    training writes every tensor it reads, so that fill is switched off: the same bytes, 6% less time a step.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        return _train(args)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def _train(args: argparse.Namespace) -> dict[str, Path]:
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - start:7.1f}s] {msg}", flush=True)

    filled = make_shapes(args.images, seed=args.seed)
    outlined = make_shapes(max(1, args.images // 4), seed=args.seed + 1, style="outlined")
    pixels = to_pixels(torch.from_numpy(filled.images))
    out_pixels = to_pixels(torch.from_numpy(outlined.images))
    log(f"data: {len(filled.captions)} filled + {len(outlined.captions)} outlined images")
    # The VAE sees both styles, so the LoRA's hollow shapes have latents that decode.
    vae = train_vae(torch.cat([pixels, out_pixels]), args.vae_steps, 2e-3, g, log)
    latents = normalize_latents(vae, encode_means(vae, pixels)) * LATENT_SCALE
    out_latents = encode_means(vae, out_pixels) * LATENT_SCALE
    far = background_distances(vae, latents, torch.from_numpy(filled.labels["colour"]), BACKGROUND)
    log("latent distance from the background: " + ", ".join(f"{COLOURS[c]} {d:.1f}" for c, d in far.items()))
    # The UNet's and text encoder's initial weights come from the seed alone, not from what the VAE stage drew, so
    # a change to one stage leaves the next stage's start where it was.
    torch.manual_seed(args.seed)
    unet, text, _ = train_diffusion(latents, filled.captions, args.unet_steps, args.batch, 2e-3, g, log=log)
    lora, _ = train_lora(unet, text, out_latents, outlined.captions, args.lora_steps, args.batch, 2e-3, g, log=log)

    tensors, metadata = checkpoint_tensors(vae, unet, text)
    paths = {"checkpoint": args.out / "checkpoints" / CHECKPOINT_NAME, "lora": args.out / "loras" / LORA_NAME}
    write_safetensors(tensors, paths["checkpoint"], metadata)
    write_safetensors(lora, paths["lora"], {"ss_network_module": "networks.lora", "ss_network_dim": "4",
                                            "ss_network_alpha": "4.0", "hearth.sd.trained": "outlined style"})
    log(f"wrote {paths['checkpoint']} and {paths['lora']}")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name in ("images", "vae_steps", "unet_steps", "lora_steps", "batch", "threads"):
        if getattr(args, name) < 1:
            parser().error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    _check_out(args.out)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
