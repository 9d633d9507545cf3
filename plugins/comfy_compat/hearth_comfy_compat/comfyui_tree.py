"""The module names of ComfyUI's own source tree: which names the import hook answers for packs.

A name in this table that Hearth does not implement is served as a recorded stand-in (see
:mod:`hearth_comfy_compat.hook`); a name outside it (``comfy.nonsense_xyz``) is left to Python and fails with
``ModuleNotFoundError``, so a pack's ``try: import comfy.foo / except ImportError`` probe sees what ComfyUI truly
lacks. The table was read from ComfyUI's repository (its ``comfy``, ``comfy_extras``, ``comfy_execution``,
``comfy_api``, ``comfy_config`` and ``app`` folders and top-level modules), including modules packs still import
that ComfyUI has since moved (``comfy.sd2_clip``, ``comfy.k_diffusion.external``). Model architecture code under
``comfy.ldm`` and ``comfy.text_encoders`` is listed as far as packs reach into it.

``comfy_extras`` holds one ``nodes_<topic>`` module per group of ComfyUI's extra nodes and grows with every release;
any ``comfy_extras.nodes_<name>`` counts as ComfyUI's. ComfyUI's launcher modules (``main``, ``protocol``,
``cuda_malloc``...) are left out on purpose: names that plain would shadow a pack's own top-level module.
"""

from __future__ import annotations

import re
from functools import cache

# "package: child child ..." -- each child is a module of that package; a child that also appears before a
# colon is itself a package. Top-level modules are listed under "".
_TREE = """
: folder_paths nodes server execution node_helpers latent_preview comfyui_version comfy comfy_extras comfy_execution
  comfy_api comfy_config app
comfy: checkpoint_pickle cli_args clip_model clip_vision conds context_windows controlnet diffusers_convert
  diffusers_load float gligen hooks latent_formats lora lora_convert model_base model_detection model_management
  model_patcher model_sampling ops options patcher_extension rmsnorm sample sampler_helpers samplers sd sd1_clip
  sd2_clip sd3_clip sdxl_clip supported_models supported_models_base utils quant_ops nested_tensor
  pixel_space_convert memory_management multigpu comfy_types k_diffusion extra_samplers t2i_adapter taesd cldm
  weight_adapter image_encoders audio_encoders text_encoders ldm
comfy.comfy_types: node_typing input_types
comfy.k_diffusion: sampling utils deis sa_solver external
comfy.extra_samplers: uni_pc
comfy.t2i_adapter: adapter
comfy.taesd: taesd taehv
comfy.cldm: cldm control_types dit_embedder mmdit
comfy.weight_adapter: base boft bypass glora loha lokr lora oft
comfy.image_encoders: dino2
comfy.audio_encoders: audio_encoders wav2vec2 whisper
comfy.text_encoders: ace aura_t5 bert chroma cosmos flux genmo hidream hunyuan_image hunyuan_video hydit llama
  long_clipl lt lumina2 omnigen2 pixart_t5 qwen_image qwen_vl sa_t5 sd2_clip sd3_clip spiece_tokenizer t5 umt5
  wan kandinsky5 z_image ovis
comfy.ldm: util common_dit modules models ace audio aura cascade chroma chroma_radiance cosmos flux genmo hidream
  hunyuan3d hunyuan_video hydit kandinsky5 lightricks lumina minimax mmaudio omnigen pixart qwen_image wan
comfy.ldm.modules: attention ema sub_quadratic_attention temporal_ae tomesd diffusionmodules distributions encoders
comfy.ldm.modules.diffusionmodules: mmdit model openaimodel upscaling util
comfy.ldm.modules.distributions: distributions
comfy.ldm.modules.encoders: noise_aug_modules
comfy.ldm.models: autoencoder
comfy.ldm.audio: autoencoder dit embedders
comfy.ldm.aura: mmdit
comfy.ldm.cascade: common controlnet stage_a stage_b stage_c stage_c_coder
comfy.ldm.chroma: layers model
comfy.ldm.chroma_radiance: layers model
comfy.ldm.cosmos: blocks model position_embedding predict2 vae
comfy.ldm.flux: controlnet layers math model redux
comfy.ldm.hidream: model
comfy.ldm.hunyuan3d: model vae
comfy.ldm.hunyuan_video: model vae vae_refiner upsampler
comfy.ldm.hydit: attn_layers controlnet models poolers posemb_layers
comfy.ldm.lightricks: model av_model embeddings_connector latent_upsampler symmetric_patchifier vae vocoders
comfy.ldm.lightricks.vae: audio_vae causal_audio_autoencoder causal_conv3d causal_video_autoencoder conv_nd_factory
  dual_conv3d pixel_norm
comfy.ldm.lightricks.vocoders: vocoder
comfy.ldm.minimax: model vae audio_vae controlnet
comfy.ldm.lumina: model
comfy.ldm.pixart: blocks pixartms
comfy.ldm.qwen_image: model
comfy.ldm.wan: model model_animate model_multitalk uni3c vae vae2_2
comfy_extras: chainner_models
comfy_extras.chainner_models: model_loading types architecture
comfy_execution: caching graph graph_types graph_utils jobs progress utils validation cache_provider
  asset_enrichment media_enrichment node_utils workflow_to_prompt lifecycle server_protocol type_resolver
comfy_api: latest input input_impl util internal feature_flags version_list torch_helpers v0_0_1 v0_0_2 v0_0_3
comfy_api.latest: _io _ui _input _input_impl _util _io_public _ui_public
comfy_api.latest._input: basic_types video_types
comfy_api.latest._input_impl: video_types
comfy_api.latest._util: geometry_types video_types
comfy_api.input: basic_types video_types
comfy_api.input_impl: video_types
comfy_api.util: video_types
comfy_api.internal: api_registry async_to_sync singleton
comfy_api.torch_helpers: torch_compile
comfy_config: config_parser types
app: app_settings custom_node_manager frontend_management logger model_manager user_manager subgraph_manager
  database assets
app.database: db models
"""

_NODES_MODULE = re.compile(r"comfy_extras\.nodes_[a-z0-9_]+")


def _parse(text: str) -> tuple[frozenset[str], frozenset[str]]:
    modules: set[str] = set()
    packages: set[str] = set()
    for entry in re.split(r"\n(?=\S)", text.strip()):
        parent, _, children = entry.partition(":")
        parent = parent.strip()
        if parent:
            packages.add(parent)
        for child in children.split():
            modules.add(f"{parent}.{child}" if parent else child)
    return frozenset(modules | packages), frozenset(packages)


MODULES, PACKAGES = _parse(_TREE)


@cache
def is_comfyui_module(fullname: str) -> bool:
    """Whether ``fullname`` names a module of ComfyUI's source tree (see the module docstring)."""
    return fullname in MODULES or bool(_NODES_MODULE.fullmatch(fullname))


def is_comfyui_package(fullname: str) -> bool:
    """Whether ComfyUI's ``fullname`` is a package (holds modules), so it gets a ``__path__``."""
    return fullname in PACKAGES


def children(package: str) -> list[str]:
    """The listed modules of ComfyUI's ``package`` (``comfy`` -> ``comfy.utils``, ...)."""
    prefix = package + "."
    return sorted(name for name in MODULES if name.startswith(prefix) and "." not in name[len(prefix):])
