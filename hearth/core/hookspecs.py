"""Every hook spec of Hearth: the extension points that plugins implement.

Naming follows the shape of a hook: ``register_*`` hooks collect lists (every implementation is called),
``*_for_*`` / ``resolve_*`` hooks are ``firstresult`` (the first non-None answer wins), and ``on_*`` hooks are
notifications whose return value is ignored. Hook arguments are never renamed or removed; new ones are added
(an implementation may accept fewer arguments than the spec names).

The docstrings below are the reference for plugin authors; ``tests/core/test_hookspecs.py`` fails if one is
missing or if a hook has no ``test_hook_<name>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from hearth.core.model_folders import TinyModel
    from hearth.core.models.formats import ModelFormat
    from hearth.core.nodes import NodeDefinition
    from hearth.core.plugins import CustomNodePacks, PluginManager
    from hearth.core.types import DataType, Route

PROJECT_NAME = "hearth"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------------------------------------------
# Nodes and types
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def register_nodes() -> Mapping[str, type] | Iterable[NodeDefinition] | None:
    """Contribute node classes to the node registry.

    :return: either a mapping of node name to node class (a ComfyUI V1 class with ``INPUT_TYPES`` /
        ``RETURN_TYPES`` / ``FUNCTION``, or a Hearth schema node made with :func:`hearth.core.schema.node`), or an
        iterable of :class:`hearth.core.nodes.NodeDefinition` when the plugin wants to set the display name itself.
        Every implementation is called; results are merged.

    Called once when the node registry is built (at start of ``comfy run``, ``comfy serve`` and ``comfy nodes``).
    When two plugins claim one name, the plugin of the higher tier wins (installed over default over
    essential), then the plugin whose name sorts first; the loser is reported as a warning.

    Example::

        @hookimpl
        def register_nodes():
            return {"MyInvert": MyInvert}
    """


@hookspec
def register_types() -> Iterable[DataType] | None:
    """Declare data types that flow along links, and which other types each one accepts.

    :return: an iterable of :class:`hearth.core.types.DataType`. Every implementation is called.

    Called once when the node registry is built. Types are plain strings in node definitions (``"IMAGE"``,
    ``"LATENT"``); declaring one gives it a description for ``/object_info`` consumers and lets validation accept
    a link whose output type is listed in ``accepts`` (for example ``DataType("FLOAT", accepts={"INT"})``).
    Undeclared types still work: two equal type names always match, and ``"*"`` matches everything.

    Example::

        @hookimpl
        def register_types():
            return [DataType("LATENT", "A batch of latent images: {'samples': tensor}")]
    """


@hookspec
def register_model_formats() -> Iterable[ModelFormat] | None:
    """Declare checkpoint formats that the model manager can detect and load.

    :return: an iterable of :class:`hearth.core.models.formats.ModelFormat`, each a table of sentinel keys (and
        optionally expected shapes) that identify one model family in a state dict. Every implementation is
        called.

    Called when the model manager first detects the architecture of a file. Detection picks the format with
    the most matching sentinels; an unknown checkpoint gets an error naming the file and the closest formats.

    Example::

        @hookimpl
        def register_model_formats():
            return [ModelFormat("sd1", sentinels={"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)})]
    """


@hookspec(firstresult=True)
def resolve_model_format(
    path: str, shapes: Mapping[str, tuple[int, ...]], metadata: Mapping[str, str], formats: list[ModelFormat]
) -> ModelFormat | None:
    """Name the format of a checkpoint when a sentinel table cannot tell it alone.

    :param path: the checkpoint file (or ``"state dict"`` when detecting from tensors in memory).
    :param shapes: every key of the checkpoint with its shape, read from the header; no tensor is loaded.
    :param metadata: the file's metadata (safetensors ``__metadata__``, or a pickle's top-level scalars).
    :param formats: every format declared through :func:`register_model_formats`, to pick from.
    :return: the :class:`hearth.core.models.formats.ModelFormat` of the file, or ``None`` to let the next plugin, and
        finally the sentinel tables, decide. First non-None result wins.

    Called by :func:`hearth.core.models.detection.detect_with_plugins` before the sentinel tables are scored, each time
    a checkpoint's architecture is detected. Use it for families that share every key and shape (SD2 v-prediction
    and eps) and differ by metadata or by a file beside the checkpoint.

    Example::

        @hookimpl
        def resolve_model_format(path, metadata, formats):
            if metadata.get("modelspec.prediction_type") == "v":
                return next(f for f in formats if f.name == "sd2-v")
    """


@hookspec(firstresult=True)
def memory_estimate_for_model(model: Any, input_shape: tuple[int, ...] | None, dtype: Any) -> int | None:
    """Estimate the working memory one forward of a model needs beyond its weights.

    :param model: the :class:`hearth.core.models.PatchedModel` about to run.
    :param input_shape: the shape of the batch it will run on (``[B, C, H, W]`` latents for a UNet), or None.
    :param dtype: the compute dtype (a ``torch.dtype``), or None when not known yet.
    :return: bytes; the first non-None answer wins. Return None for models you do not know, and the model's
        own declared estimate (``PatchedModel(memory_estimate=...)``) is used.

    Called by the model manager before it loads models for a computation, to decide how much to evict or
    offload so that the computation fits the device's budget.

    Example::

        @hookimpl
        def memory_estimate_for_model(model, input_shape):
            if isinstance(model.module, MyUNet) and input_shape is not None:
                b, c, h, w = input_shape
                return b * h * w * 64 * 1024
    """


@hookspec
def register_tiny_models() -> Mapping[str, TinyModel] | None:
    """Contribute tiny models (random weights, real file layout) that ``comfy models make-tiny`` writes.

    :return: a mapping of name (what users type: ``comfy models make-tiny sd1 --out F``) to a
        :class:`hearth.core.model_folders.TinyModel`, which says the folder kind and file name the model gets under
        ``make-tiny all --models-dir DIR`` and writes the file. Every implementation is called; on a name clash
        the higher tier, then the first plugin name, wins.

    Called by ``comfy models make-tiny`` (and the tests that run the example workflows) to list and write the
    tiny models. A plugin that adds a model family adds its tiny models here, under the file names its example
    workflows load, so ``make-tiny all`` gives every example what it needs.

    Example::

        @hookimpl
        def register_tiny_models():
            return {"my-family": TinyModel("checkpoints", "tiny-my-family.safetensors", write_tiny_checkpoint,
                                           "My family, 2 MB")}
    """


@hookspec
def register_model_loaders() -> Mapping[tuple[str, str], Any] | None:
    """Contribute the loaders that ComfyUI's generic loader nodes (and ``load_model_file``) dispatch to.

    :return: a mapping of ``(kind, name)`` to ``load(path, **options) -> value``. ``kind`` is the model folder
        kind the node lists:

        * ``"checkpoints"`` (``CheckpointLoaderSimple``): ``value`` is the ``(MODEL, CLIP, VAE)`` tuple;
        * ``"vae"`` (``VAELoader``): a VAE;
        * ``"diffusion_models"`` (``UNETLoader``; option ``weight_dtype``): a MODEL;
        * ``"text_encoders"`` (``CLIPLoader``; option ``device``, ``"cpu"`` or None): a CLIP.

        ``name`` is the format name detection gives the file (see :func:`register_model_formats`), except for
        ``"text_encoders"``, where it is the ``type`` users pick in ``CLIPLoader`` (``"stable_diffusion"``,
        ``"wan"``). Values are as ``docs/data-types.md`` describes them; subclassing
        :class:`hearth.core.models.ModelValue` gives them ComfyUI's ModelPatcher surface, and loading through
        :func:`hearth.core.models.load_once` shares one load per file. A loader takes the options it knows and
        ignores the rest (``**_``). Every implementation is called; on a clash the higher tier, then the first
        plugin name, wins.

    Called by the loader nodes when they list their choices (``CLIPLoader``'s types) and each time they load a
    file, through :func:`hearth.core.models.load_model_file`: it detects the file's format and uses the loader
    registered for ``(kind, format name)``, so one node loads every family whose plugin is installed, and a file
    no plugin loads is named with its detected format and the loaders installed for its kind.

    Example::

        @hookimpl
        def register_model_loaders():
            return {("checkpoints", "my-family"): load_checkpoint,   # -> (MODEL, CLIP, VAE)
                    ("text_encoders", "wan"): load_umt5, ("vae", "wan21_vae"): load_wan_vae}
    """


@hookspec
def register_samplers() -> Mapping[str, Any] | None:
    """Contribute samplers, by name.

    :return: a mapping of sampler name (as users pick it in ``KSampler``) to a callable with the k-diffusion
        signature ``sample(model, x, sigmas, *, extra_args=None, callback=None, disable=None, **opts) -> x``.
        Every implementation is called; on a name clash the higher tier, then the first plugin name, wins.

    Called when the sampler list is first needed (building node info, or running a sampler node).

    Example::

        @hookimpl
        def register_samplers():
            return {"euler": sample_euler}
    """


@hookspec
def register_schedulers() -> Mapping[str, Any] | None:
    """Contribute noise schedules, by name.

    :return: a mapping of scheduler name to a callable ``get_sigmas(n, sigma_min, sigma_max, device) -> sigmas``.
        Every implementation is called; clashes resolve as for :func:`register_samplers`.

    Called when the scheduler list is first needed.

    Example::

        @hookimpl
        def register_schedulers():
            return {"karras": get_sigmas_karras}
    """


@hookspec(firstresult=True)
def resolve_sampling_engine() -> Any | None:
    """Offer the sampling engine that runs whole samplings, for plugins that sample without a sampler node.

    :return: an object (a module will do) with the attributes below, or ``None``. First non-None result wins.

        * ``Sampler(function, name, extra_options)``: a SAMPLER made of a k-diffusion-style function, with
          ``.sample(model_fn, x, sigmas, **kwargs)`` and ``.noise``; ``sampler_object(name)``: a registered one.
        * ``calculate_sigmas(model_sampling, scheduler, steps, sampler=None)`` and
          ``ksampler_sigmas(model_sampling, scheduler, sampler, steps, denoise)``: descending sigmas.
        * ``Guider(model, positive, negative, cfg)`` with ``.sample(noise, latent, sampler, sigmas, *,
          denoise_mask, callback, disable_pbar, seed)``: a CFG sampling on raw latents.
        * ``common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent, *,
          denoise, disable_noise, start_step, last_step, force_full_denoise) -> LATENT``: KSampler's body.
        * ``prepare_noise(latent, seed, noise_inds)``, ``fix_empty_latent_channels(model, latent)``.
        * ``progress_callback(model, x0_output)``: a sampler callback feeding the running node's progress and
          preview; ``progress_preview(x0, family) -> (format, PIL image, max size) | None``: a latent's preview.
        * ``default_noise_sampler(x, seed)`` and ``BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed,
          transform, cpu)``: ComfyUI's noise samplers, ``(sigma, sigma_next) -> noise``, with its numbers for a seed.

    Called by the ComfyUI compatibility plugin when a custom-node pack uses ``comfy.samplers``,
    ``comfy.sample`` or ``latent_preview`` (never at import), so those give the same latents, for the same seed
    and settings, as the KSampler node of the plugin that answers.

    Example::

        @hookimpl
        def resolve_sampling_engine():
            from my_samplers import engine

            return engine
    """


@hookspec(firstresult=True)
def lora_for_models(model: Any, clip: Any, lora: Mapping[str, Any], strength_model: float,
                    strength_clip: float) -> tuple[Any, Any] | None:
    """Put a LoRA, given as a state dict already in memory, on a MODEL and a CLIP.

    :param model: the MODEL to patch, or None.
    :param clip: the CLIP to patch, or None.
    :param lora: the LoRA's tensors by key (any layout the plugin reads: kohya, diffusers/PEFT, LyCORIS...).
    :param strength_model: the weight of the LoRA on the MODEL (0 leaves it as it came).
    :param strength_clip: the weight of the LoRA on the CLIP.
    :return: ``(model, clip)``, clones with the patches on (the originals untouched), or ``None`` to let the
        next plugin answer. First non-None result wins. Raise ``ValueError`` naming the keys when the state dict
        holds no LoRA the plugin reads.

    Called by the ComfyUI compatibility plugin for a custom-node pack's ``comfy.sd.load_lora_for_models``, so
    a LoRA a pack loads itself patches the models as the ``LoraLoader`` node would.

    Example::

        @hookimpl
        def lora_for_models(model, clip, lora, strength_model, strength_clip):
            return apply_lora(model, clip, parse(lora), strength_model, strength_clip)
    """


@hookspec
def register_routes() -> Iterable[Route] | None:
    """Contribute HTTP routes to ``comfy serve``.

    :return: an iterable of :class:`hearth.core.types.Route` (method, path, async handler). Every implementation is
        called.

    Called once when the web server starts; routes are mounted both bare and under ``/api`` as ComfyUI does.

    Example::

        @hookimpl
        def register_routes():
            return [Route("GET", "/my-pack/status", status_handler)]
    """


@hookspec
def register_prompt_handlers() -> Iterable[Callable[[dict[str, Any]], dict[str, Any]]] | None:
    """Contribute functions that see, and may rewrite, every prompt submitted to ``comfy serve``.

    :return: an iterable of ``handler(body) -> body``, where ``body`` is the JSON object of ``POST /prompt``
        (``prompt``, ``client_id``, ``extra_data``...). Every implementation is called; the handlers run in
        the order collected, each on what the previous returned.

    Called on each ``POST /prompt``, before the prompt is parsed and validated. A handler that raises fails the
    request; one that must never do that catches its own errors.

    Example::

        @hookimpl
        def register_prompt_handlers():
            return [add_default_negative_prompt]
    """


@hookspec
def on_server_start(app: Any, events: Any, queue: Any) -> None:
    """Notification that ``comfy serve`` built its application, for plugins that serve more than routes.

    :param app: the FastAPI application; routes and static folders added here are served (after Hearth's API
        and the routes of :func:`register_routes`, before the static UI folders).
    :param events: what carries a plugin's events to the server's WebSocket clients: ``publish(event, data,
        sid)`` (a JSON message; ``sid`` None for every client), ``publish_binary(event_type, data, sid)`` (a binary
        frame; for the preview types 1 and 2 ``data`` may be ComfyUI's ``(format, PIL image, max size)``),
        ``client_of(prompt_id)`` (the client that queued a prompt) and ``loop`` (the server's event loop).
    :param queue: the server's prompt queue.

    Called once when the application is created; :func:`on_server_stop` follows when it shuts down. The return
    value is ignored; an exception is reported and the server still starts.

    Example::

        @hookimpl
        def on_server_start(app, events, queue):
            app.add_api_route("/my-pack/ping", ping)
    """


@hookspec
def on_server_stop(app: Any, events: Any) -> None:
    """Notification that ``comfy serve`` shuts down.

    :param app: the application :func:`on_server_start` was given.
    :param events: the events carrier :func:`on_server_start` was given; stop using it.

    Called once when the application's lifespan ends. The return value is ignored.
    """


# ---------------------------------------------------------------------------------------------------------------
# ComfyUI custom-node packs
# ---------------------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def custom_nodes_for_folders(
    folders: list[Path], wanted: Callable[[str], bool], plugins: PluginManager
) -> CustomNodePacks | None:
    """Load the ComfyUI-format packs in custom-node folders.

    :param folders: the ``custom_nodes`` folders to read (``--custom-nodes``, or an environment's own); each pack
        is a module or package folder in one of them.
    :param wanted: ``wanted(pack_name)`` is false for a pack ``HEARTH_PLUGINS`` / ``HEARTH_DISABLE_PLUGINS``
        leave out; such a pack is neither imported nor recorded.
    :param plugins: the :class:`hearth.core.plugins.PluginManager` loading them (not the active one yet: packs
        that read samplers or node classes while they import should be answered from it).
    :return: a :class:`hearth.core.plugins.CustomNodePacks`: one record per pack (kind ``"comfyui"``, tier
        ``"installed"``, a failed import as the record's error), the packs' ``web_directories``, a
        ``missing_internals()`` report, and a ``register_nodes`` hook implementation contributing the packs'
        nodes. The manager registers it as the ``custom_nodes`` plugin. First non-None result wins; with none,
        the manager records ``custom_nodes`` with an error saying to install hearth-comfy-compat.

    Called once by :meth:`hearth.core.plugins.PluginManager.load` when it is given custom-node folders, after
    every other plugin has loaded (so packs can use their nodes and samplers at import).

    Example::

        @hookimpl
        def custom_nodes_for_folders(folders, wanted, plugins):
            loader = MyPackLoader(folders, wanted)
            loader.load()
            return loader
    """


# ---------------------------------------------------------------------------------------------------------------
# Execution notifications
# ---------------------------------------------------------------------------------------------------------------


@hookspec
def on_prompt_start(prompt_id: str, prompt: Mapping[str, Any], extra_data: Mapping[str, Any]) -> None:
    """Notification that a prompt (one queued workflow) starts executing.

    :param prompt_id: the id the queue gave the prompt.
    :param prompt: the API-format prompt, ``{node_id: {"class_type", "inputs"}}``.
    :param extra_data: the submitter's extra data (``extra_pnginfo``, ``client_id``).

    Called by the executor before the first node runs, after ``execution_start`` is emitted. The return value is
    ignored; an exception is reported and does not stop the prompt.
    """


@hookspec
def on_prompt_end(prompt_id: str, status: str, outputs: Mapping[str, Any]) -> None:
    """Notification that a prompt finished.

    :param prompt_id: the id the queue gave the prompt.
    :param status: ``"success"``, ``"error"`` or ``"interrupted"``.
    :param outputs: the UI outputs of output nodes that ran, ``{node_id: {"images": [...]}}``.

    Called once per prompt after the last node, whatever the outcome. The return value is ignored.
    """


@hookspec
def on_node_error(
    prompt_id: str, node_id: str, class_type: str, error: BaseException, traceback: list[str]
) -> None:
    """Notification that a node raised while executing.

    :param prompt_id: the prompt being executed.
    :param node_id: the id of the failing node in the prompt.
    :param class_type: the node's class name.
    :param error: the exception the node raised.
    :param traceback: the formatted traceback lines, as sent in ``execution_error``.

    Called before ``execution_error`` is emitted. The return value is ignored.
    """
