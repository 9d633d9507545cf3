"""Test-side conversion of LDM-layout state dicts to the diffusers / transformers layouts (pure functions).

These exist only so the parity tests can load one set of weights into both our modules and the reference
implementations; Hearth itself never converts to diffusers.
"""

from __future__ import annotations

from hearth_sd.unet import UNetConfig
from hearth_sd.vae import VAEConfig

_RESNET = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}


def _rename_resnet(rest: str) -> str:
    for old, new in _RESNET.items():
        if rest.startswith(old + "."):
            return new + rest[len(old) :]
    raise KeyError(rest)


def unet_block_map(config: UNetConfig) -> dict[str, str]:
    """LDM block prefix -> diffusers module prefix, for every block of a UNet of this config."""
    m = {}
    k = 1
    levels = len(config.channel_mult)
    for i in range(levels):
        for j in range(config.num_res_blocks):
            m[f"input_blocks.{k}.0."] = f"R:down_blocks.{i}.resnets.{j}."
            m[f"input_blocks.{k}.1."] = f"down_blocks.{i}.attentions.{j}."
            k += 1
        if i != levels - 1:
            m[f"input_blocks.{k}.0.op."] = f"down_blocks.{i}.downsamplers.0.conv."
            k += 1
    m["middle_block.0."] = "R:mid_block.resnets.0."
    m["middle_block.1."] = "mid_block.attentions.0."
    m["middle_block.2."] = "R:mid_block.resnets.1."
    k = 0
    for u, level in enumerate(reversed(range(levels))):
        for j in range(config.num_res_blocks + 1):
            m[f"output_blocks.{k}.0."] = f"R:up_blocks.{u}.resnets.{j}."
            up_index = 2 if config.transformer_depth[level] else 1
            m[f"output_blocks.{k}.1."] = f"up_blocks.{u}.attentions.{j}."
            if level and j == config.num_res_blocks:
                m[f"output_blocks.{k}.{up_index}.conv."] = f"up_blocks.{u}.upsamplers.0.conv."
            k += 1
    m.update(
        {
            "time_embed.0.": "time_embedding.linear_1.",
            "time_embed.2.": "time_embedding.linear_2.",
            "label_emb.0.0.": "add_embedding.linear_1.",
            "label_emb.0.2.": "add_embedding.linear_2.",
            "input_blocks.0.0.": "conv_in.",
            "out.0.": "conv_norm_out.",
            "out.2.": "conv_out.",
        }
    )
    return m


def convert_unet(state_dict: dict, config: UNetConfig) -> dict:
    """LDM UNet (``model.diffusion_model.*`` with the prefix stripped) -> diffusers ``UNet2DConditionModel``."""
    blocks = sorted(unet_block_map(config).items(), key=lambda kv: -len(kv[0]))
    out = {}
    for key, value in state_dict.items():
        for old, new in blocks:
            if key.startswith(old):
                rest = key[len(old) :]
                if new.startswith("R:"):
                    new, rest = new[2:], _rename_resnet(rest)
                out[new + rest] = value
                break
        else:
            raise KeyError(f"no diffusers name for UNet key {key}")
    return out


def convert_vae(state_dict: dict, config: VAEConfig) -> dict:
    """LDM VAE (``first_stage_model.*`` with the prefix stripped) -> diffusers ``AutoencoderKL``."""
    n = len(config.ch_mult)
    out = {}
    for key, value in state_dict.items():
        new = key
        parts = key.split(".")
        if parts[1] == "down" and parts[3] == "block":
            new = f"{parts[0]}.down_blocks.{parts[2]}.resnets.{'.'.join(parts[4:])}"
        elif parts[1] == "down" and parts[3] == "downsample":
            new = f"{parts[0]}.down_blocks.{parts[2]}.downsamplers.0.{'.'.join(parts[4:])}"
        elif parts[1] == "up" and parts[3] == "block":
            new = f"{parts[0]}.up_blocks.{n - 1 - int(parts[2])}.resnets.{'.'.join(parts[4:])}"
        elif parts[1] == "up" and parts[3] == "upsample":
            new = f"{parts[0]}.up_blocks.{n - 1 - int(parts[2])}.upsamplers.0.{'.'.join(parts[4:])}"
        elif parts[1] == "mid" and parts[2].startswith("block_"):
            new = f"{parts[0]}.mid_block.resnets.{int(parts[2][-1]) - 1}.{'.'.join(parts[3:])}"
        elif parts[1] == "mid" and parts[2] == "attn_1":
            name = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}[parts[3]]
            new = f"{parts[0]}.mid_block.attentions.0.{name}.{parts[4]}"
            if parts[3] != "norm" and value.ndim == 4:
                value = value[:, :, 0, 0]
        elif parts[1] == "norm_out":
            new = f"{parts[0]}.conv_norm_out.{parts[2]}"
        new = new.replace(".nin_shortcut.", ".conv_shortcut.")
        out[new] = value
    return out


def convert_open_clip(state_dict: dict) -> dict:
    """OpenCLIP text tower (``model.*`` with the prefix stripped) -> transformers ``CLIPTextModelWithProjection``."""
    out = {}
    for key, value in state_dict.items():
        if key == "token_embedding.weight":
            out["text_model.embeddings.token_embedding.weight"] = value
        elif key == "positional_embedding":
            out["text_model.embeddings.position_embedding.weight"] = value
        elif key.startswith("ln_final."):
            out["text_model.final_layer_norm." + key.split(".")[-1]] = value
        elif key == "text_projection":
            out["text_projection.weight"] = value.t().contiguous()
        elif key == "logit_scale":
            continue
        elif key.startswith("transformer.resblocks."):
            parts = key.split(".")
            layer = f"text_model.encoder.layers.{parts[2]}."
            rest = ".".join(parts[3:])
            if rest.startswith("attn.in_proj_"):
                kind = rest.rsplit("_", 1)[-1]  # weight | bias
                for name, chunk in zip("qkv", value.chunk(3, dim=0), strict=True):
                    out[f"{layer}self_attn.{name}_proj.{kind}"] = chunk
                continue
            rest = (
                rest.replace("attn.out_proj", "self_attn.out_proj")
                .replace("ln_1", "layer_norm1")
                .replace("ln_2", "layer_norm2")
                .replace("mlp.c_fc", "mlp.fc1")
                .replace("mlp.c_proj", "mlp.fc2")
            )
            out[layer + rest] = value
        else:
            raise KeyError(f"no transformers name for OpenCLIP key {key}")
    return out
