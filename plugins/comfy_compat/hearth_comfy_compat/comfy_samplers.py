"""ComfyUI's ``comfy.samplers`` module: sampler and scheduler names, KSampler, CFGGuider, sigmas, sampler objects.

The names are whatever the loaded plugins register through ``register_samplers`` / ``register_schedulers`` (read
fresh at each access, so ``KSampler.SAMPLERS`` in a pack's ``INPUT_TYPES`` lists every installed sampler); the
sampling itself is the engine a plugin offers through ``resolve_sampling_engine`` (the samplers plugin's), so a
pack's own sampling node takes the same steps as Hearth's KSampler. Latents go in and come out raw (unscaled), as in ComfyUI.
"""

from __future__ import annotations

import contextvars
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

from hearth_comfy_compat import services

__all__ = ["CFGGuider", "KSAMPLER", "KSampler", "Sampler", "SchedulerHandler", "calc_cond_batch", "calculate_sigmas",
           "cfg_function", "ksampler", "sample", "sampler_object", "sampling_function"]


def _registered(kind: str) -> dict[str, Callable[..., Any]]:
    return services.registered(kind)


def sampler_names() -> list[str]:
    return list(_registered("sampler"))


def scheduler_names() -> list[str]:
    return list(_registered("scheduler"))


def _sampling() -> Any:
    """The sampling engine a plugin offers (``resolve_sampling_engine``), or a one-line error saying what to install."""
    return services.sampling_engine()


def _lookup(kind: str, name: str) -> Callable[..., Any]:
    found = _registered(kind)
    if name not in found:
        raise ValueError(f"unknown {kind} {name!r}; installed {kind}s: {', '.join(sorted(found)) or 'none'}")
    return found[name]


def __getattr__(name: str) -> Any:
    # Module-level lists, fresh at each access (`from comfy.samplers import SAMPLER_NAMES` included).
    if name in ("SAMPLER_NAMES", "KSAMPLER_NAMES"):
        return sampler_names()
    if name == "SCHEDULER_NAMES":
        return scheduler_names()
    if name == "SCHEDULER_HANDLERS":
        return {key: _scheduler_handler(fn) for key, fn in _registered("scheduler").items()}
    if name == "k_diffusion_sampling":
        # ComfyUI's samplers module imports k-diffusion's as this name; packs reach sample_* functions through it.
        return importlib.import_module("hearth_comfy_compat.comfyui.comfy.k_diffusion.sampling")
    raise AttributeError(name)


class SchedulerHandler(NamedTuple):
    """How ComfyUI calls a schedule: ``handler(model_sampling, steps)`` when ``use_ms``, else
    ``handler(n=steps, sigma_min=..., sigma_max=...)``."""

    handler: Callable[..., Any]
    use_ms: bool = True


def _scheduler_handler(schedule: Callable[..., Any]) -> SchedulerHandler:
    # Hearth's schedules take (model_sampling, n, device) or (n, sigma_min, sigma_max, device); either is offered
    # with ComfyUI's calling convention. SCHEDULER_HANDLERS is read fresh: a pack adding an entry to it registers
    # nothing (a plugin's register_schedulers does).
    if getattr(schedule, "uses_model_sampling", False):
        def with_model_sampling(model_sampling: Any, steps: int) -> Any:
            return schedule(model_sampling, steps)

        return SchedulerHandler(with_model_sampling, True)
    return SchedulerHandler(schedule, False)


def cfg_function(model: Any, cond_pred: Any, uncond_pred: Any, cond_scale: float, x: Any, timestep: Any,
                 model_options: dict[str, Any] | None = None, cond: Any = None, uncond: Any = None) -> Any:
    """Classifier-free guidance of two denoised predictions, as the MODEL's ``model_options`` ask: its
    ``sampler_cfg_function`` (which works on noise, ``x - prediction``) or ``uncond + (cond - uncond) * scale``,
    then each ``sampler_post_cfg_function`` on the result. ``model`` is what those functions get as
    ``args["model"]``."""
    options = model_options or {}
    custom = options.get("sampler_cfg_function")
    if custom is not None:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred, "cond_scale": cond_scale, "timestep": timestep,
                "input": x, "sigma": timestep, "cond_denoised": cond_pred, "uncond_denoised": uncond_pred,
                "model": model, "model_options": options}
        result = x - custom(args)
    else:
        result = uncond_pred + (cond_pred - uncond_pred) * cond_scale
    for post in options.get("sampler_post_cfg_function", ()):
        args = {"denoised": result, "cond": cond, "uncond": uncond, "cond_scale": cond_scale, "model": model,
                "uncond_denoised": uncond_pred, "cond_denoised": cond_pred, "sigma": timestep,
                "model_options": options, "input": x}
        result = post(args)
    return result


class Sampler:
    """ComfyUI's base of SAMPLER objects (KSAMPLER is one); ``max_denoise`` tells whether sampling starts from
    pure noise."""

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__}.sample")

    def max_denoise(self, model_wrap: Any, sigmas: Any) -> bool:
        model_sampling = getattr(model_wrap, "sampling", None) or getattr(
            getattr(model_wrap, "inner_model", None), "model_sampling", None)
        if model_sampling is None:
            return False
        sigma_max = float(model_sampling.sigma_max)
        return abs(float(sigmas[0]) - sigma_max) < 1e-5 * sigma_max or float(sigmas[0]) > sigma_max


class _KSamplerNames(type):
    """``KSampler.SAMPLERS`` / ``KSampler.SCHEDULERS`` on the class, as packs read them, fresh each time.

    A pack may assign them, as in ComfyUI (efficiency-nodes widens SCHEDULERS with its own names while its sampler
    runs, then puts the old list back): the assigned list is what they read until a list equal to the registered
    names is assigned, which makes them fresh again."""

    _assigned: dict[str, list[str]] = {}

    def _names(cls, kind: str) -> list[str]:
        assigned = _KSamplerNames._assigned.get(kind)
        return list(assigned) if assigned is not None else (sampler_names() if kind == "SAMPLERS"
                                                             else scheduler_names())

    def _assign(cls, kind: str, names: Any) -> None:
        _KSamplerNames._assigned.pop(kind, None)
        if list(names) != cls._names(kind):
            _KSamplerNames._assigned[kind] = list(names)

    @property
    def SAMPLERS(cls) -> list[str]:  # noqa: N802 - ComfyUI's name
        return cls._names("SAMPLERS")

    @SAMPLERS.setter
    def SAMPLERS(cls, names: Any) -> None:  # noqa: N802
        cls._assign("SAMPLERS", names)

    @property
    def SCHEDULERS(cls) -> list[str]:  # noqa: N802 - ComfyUI's name
        return cls._names("SCHEDULERS")

    @SCHEDULERS.setter
    def SCHEDULERS(cls, names: Any) -> None:  # noqa: N802
        cls._assign("SCHEDULERS", names)


class KSAMPLER(Sampler):
    """A SAMPLER made from a k-diffusion-style function ``fn(model, x, sigmas, extra_args, callback, disable,
    **extra_options)``, as packs build their own samplers; it plugs into SamplerCustom and CFGGuider."""

    def __init__(self, sampler_function: Callable[..., Any], extra_options: dict[str, Any] | None = None,
                 inpaint_options: dict[str, Any] | None = None) -> None:
        self.sampler_function = sampler_function
        self.extra_options = dict(extra_options or {})
        self.inpaint_options = dict(inpaint_options or {})
        self._sampler = _sampling().Sampler(sampler_function, getattr(sampler_function, "__name__", ""),
                                            self.extra_options)
        self.noise = self._sampler.noise

    def sample(self, model_fn: Any, x: Any, sigmas: Any, **kwargs: Any) -> Any:
        return self._sampler.sample(model_fn, x, sigmas, **kwargs)

    def __repr__(self) -> str:
        return f"<KSAMPLER {getattr(self.sampler_function, '__name__', self.sampler_function)!r}>"


def ksampler(sampler_name: str, extra_options: dict[str, Any] | None = None,
             inpaint_options: dict[str, Any] | None = None) -> KSAMPLER:
    """The registered sampler ``sampler_name`` as a SAMPLER with ``extra_options`` passed to it."""
    return KSAMPLER(_lookup("sampler", sampler_name), extra_options, inpaint_options)


def sampler_object(name: str) -> Any:
    """The SAMPLER of a registered sampler name (what KSamplerSelect outputs)."""
    _lookup("sampler", name)  # the clear error for an unknown name
    return _sampling().sampler_object(name)


def calculate_sigmas(model_sampling: Any, scheduler_name: str, steps: int) -> Any:
    """``steps + 1`` descending sigmas of a registered schedule for a model's ``model_sampling``."""
    _lookup("scheduler", scheduler_name)
    return _sampling().calculate_sigmas(model_sampling, scheduler_name, steps)


class _Prediction(NamedTuple):
    """What calc_cond_batch predicts with while a guider's own predict_noise runs: the MODEL, and the engine's
    guided-denoiser type (the ``denoiser`` the engine hands a sampler), which predicts one conditioning's regions."""

    model: Any
    denoiser_type: type


_prediction: contextvars.ContextVar[_Prediction | None] = contextvars.ContextVar("comfy_samplers_prediction",
                                                                                  default=None)


def calc_cond_batch(model: Any, conds: list[Any], x_in: Any, timestep: Any,
                    model_options: dict[str, Any] | None = None) -> list[Any]:
    """One denoised prediction of ``x_in`` at sigma ``timestep`` per conditioning in ``conds`` (zeros for
    ``None``), with ``model_options``' model patches and none of its sampler functions.

    Hearth answers it inside a CFGGuider's ``predict_noise`` (for its ``self.conds``), while that guider samples,
    inside the ``CALC_COND_BATCH`` wrappers of ``model_options``. Elsewhere (a MODEL's
    ``sampler_post_cfg_function`` under Hearth's own KSampler) the error names it.
    """
    state = _prediction.get()
    if state is None:
        from hearth_comfy_compat import hook

        raise hook.lacking("comfy.samplers.calc_cond_batch", "Hearth predicts conditionings for a pack only inside "
                           "a comfy.samplers.CFGGuider's predict_noise while that guider samples")
    from hearth_comfy_compat.comfyui.comfy.patcher_extension import WrapperExecutor, get_all_wrappers

    options = model_options or {}
    wrappers = get_all_wrappers("calc_cond_batch", options, is_model_options=True)
    return WrapperExecutor.new_executor(_calc_cond_batch, wrappers).execute(model, conds, x_in, timestep, options)


def _calc_cond_batch(model: Any, conds: list[Any], x_in: Any, timestep: Any, model_options: dict[str, Any]) -> list[Any]:
    import torch

    from hearth.core.models.model_value import SAMPLER_OPTIONS

    state = _prediction.get()
    plain = state.model.clone()
    plain.model_options = {key: value for key, value in model_options.items() if key not in SAMPLER_OPTIONS}
    return [torch.zeros_like(x_in) if cond is None else state.denoiser_type(plain, cond, None, 1.0)(x_in, timestep)
            for cond in conds]


def sampling_function(model: Any, x: Any, timestep: Any, uncond: Any, cond: Any, cond_scale: float,
                      model_options: dict[str, Any] | None = None, seed: int | None = None) -> Any:
    """ComfyUI's guided prediction: :func:`calc_cond_batch` of ``cond`` and ``uncond`` (``uncond`` skipped at a
    scale of 1 unless ``disable_cfg1_optimization``), the ``sampler_pre_cfg_function``s, then :func:`cfg_function`."""
    import math

    options = model_options or {}
    if math.isclose(cond_scale, 1.0) and not options.get("disable_cfg1_optimization", False):
        uncond = None
    conds = [cond, uncond]
    out = calc_cond_batch(model, conds, x, timestep, options)
    for fn in options.get("sampler_pre_cfg_function", ()):
        out = list(fn({"conds": conds, "conds_out": out, "cond_scale": cond_scale, "timestep": timestep, "input": x,
                       "sigma": timestep, "model": model, "model_options": options}))
    return cfg_function(model, out[0], out[1], cond_scale, x, timestep, options, cond, uncond)


class CFGGuider:
    """ComfyUI's CFGGuider: a MODEL with positive/negative conditioning and a cfg scale that samples a latent.

    ``sample(noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
    seed=None)`` takes and returns raw latents, with the samplers plugin's guidance, inpainting and progress.

    A subclass overriding ``predict_noise(x, timestep, model_options, seed)`` (scheduled CFG, perturbed guidance)
    is honoured: each step the sampler calls it, with ``self.conds`` holding the conditionings as Hearth resolved
    them (``"positive"``, ``"negative"``), ``model_options["transformer_options"]["sample_sigmas"]`` the schedule,
    and :func:`sampling_function` / :func:`calc_cond_batch` predicting them. ``sample`` runs the MODEL's
    ``OUTER_SAMPLE`` wrappers around :meth:`outer_sample`, which calls :meth:`inner_sample`: a subclass may
    override either and call ``super()``. Differences: ``self.conds`` holds Hearth's conditioning regions, not
    ComfyUI's converted dicts; ``inner_sample`` is the samplers plugin's loop, so an override that rebuilds
    ComfyUI's loop from its internals (``KSamplerX0Inpaint``...) fails naming what Hearth lacks.
    """

    def __init__(self, model_patcher: Any) -> None:
        self.model_patcher = model_patcher
        self.model_options = getattr(model_patcher, "model_options", {})
        self.original_conds: dict[str, Any] = {}
        self.conds: dict[str, Any] = {}
        self.cfg = 1.0

    @property
    def inner_model(self) -> Any:
        """ComfyUI's BaseModel of the MODEL (``model_patcher.model``)."""
        return getattr(self.model_patcher, "model", self.model_patcher)

    def set_conds(self, positive: list, negative: list | None = None) -> None:
        self.inner_set_conds({"positive": positive, "negative": negative})

    def inner_set_conds(self, conds: dict[str, Any]) -> None:
        self.original_conds.update(conds)

    def set_cfg(self, cfg: float) -> None:
        self.cfg = cfg

    def predict_noise(self, x: Any, timestep: Any, model_options: dict[str, Any] | None = None,
                      seed: int | None = None) -> Any:
        """The guided prediction at sigma ``timestep`` (ComfyUI's name: it is a denoised latent, not noise)."""
        return sampling_function(self.inner_model, x, timestep, self.conds.get("negative"), self.conds.get("positive"),
                                 self.cfg, model_options=model_options, seed=seed)

    def __call__(self, x: Any, timestep: Any, model_options: dict[str, Any] | None = None,
                 seed: int | None = None) -> Any:
        return self.predict_noise(x, timestep, model_options, seed)

    def sample(self, noise: Any, latent_image: Any, sampler: Any, sigmas: Any, denoise_mask: Any = None,
               callback: Callable[..., None] | None = None, disable_pbar: bool = False, seed: int | None = None) -> Any:
        """Sample through :meth:`outer_sample`, inside the MODEL's ``OUTER_SAMPLE`` wrappers (its own and its
        ``model_options``'), then let the MODEL clean up (its ``ON_CLEANUP`` callbacks)."""
        if "positive" not in self.original_conds:
            raise ValueError("CFGGuider.sample: no conditioning; call set_conds(positive, negative) first")
        from hearth_comfy_compat.comfyui.comfy.patcher_extension import WrapperExecutor

        executor = WrapperExecutor.new_class_executor(self.outer_sample, self, self._wrappers("outer_sample"))
        try:
            return executor.execute(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
        finally:
            cleanup = getattr(self.model_patcher, "cleanup", None)
            if callable(cleanup):
                cleanup()

    def _wrappers(self, kind: str) -> list[Any]:
        # The MODEL's own registrations first, then its model_options' (ComfyUI merges the two before sampling).
        found: list[Any] = []
        tables = [getattr(self.model_patcher, "wrappers", None),
                  self.model_options.get("transformer_options", {}).get("wrappers")]
        for table in tables:
            for functions in (table or {}).get(kind, {}).values() if isinstance(table, dict) else ():
                found.extend(fn for fn in functions if fn not in found)
        return found

    def outer_sample(self, noise: Any, latent_image: Any, sampler: Any, sigmas: Any, denoise_mask: Any = None,
                     callback: Callable[..., None] | None = None, disable_pbar: bool = False,
                     seed: int | None = None) -> Any:
        """ComfyUI's step around the sampling loop; here it hands over to :meth:`inner_sample` on the MODEL's
        load device (Hearth's samplers load the MODEL themselves)."""
        device = getattr(self.model_patcher, "load_device", None)
        return self.inner_sample(noise, latent_image, device, sampler, sigmas, denoise_mask, callback, disable_pbar,
                                 seed)

    def inner_sample(self, noise: Any, latent_image: Any, device: Any, sampler: Any, sigmas: Any,
                     denoise_mask: Any = None, callback: Callable[..., None] | None = None, disable_pbar: bool = False,
                     seed: int | None = None) -> Any:
        """The sampling loop: the samplers plugin's, with this guider's conditionings and scale (and its own
        ``predict_noise`` when a subclass has one, or the MODEL has ``PREDICT_NOISE`` / ``CALC_COND_BATCH``
        wrappers, which then run around each step's prediction)."""
        guider = _sampling().Guider(self.model_patcher, self.original_conds["positive"],
                                    self.original_conds.get("negative"), self.cfg)
        overridden = {name for k in type(self).__mro__ if k not in (CFGGuider, object) for name in vars(k)}
        # A guider's own prediction, or a MODEL wrapping the prediction steps, needs the steps run here.
        if {"predict_noise", "__call__"} & overridden or self._wrappers("predict_noise") or self._wrappers(
                "calc_cond_batch"):
            sampler = self._own_prediction(sampler, seed)
        return guider.sample(noise, latent_image, sampler, sigmas, denoise_mask=denoise_mask, callback=callback,
                             disable_pbar=disable_pbar, seed=seed)

    def _own_prediction(self, sampler: Any, seed: int | None) -> Any:
        """``sampler`` run on this guider's own prediction instead of the engine's guided denoiser, which it
        replaces inside the engine's wrappers (inpainting keeps working)."""
        from hearth.core.models.model_value import copy_options
        from hearth_comfy_compat.comfyui.comfy.patcher_extension import (
            WrapperExecutor,
            get_all_wrappers,
            merge_nested_dicts,
        )

        def run(model_fn: Any, x: Any, sigmas: Any, *, extra_args: Any = None, callback: Any = None,
                disable: Any = None, noise_sampler: Any = None) -> Any:
            holder, guidance = None, model_fn
            while not hasattr(guidance, "positive") and hasattr(guidance, "denoiser"):
                holder, guidance = guidance, guidance.denoiser
            self.conds = {"positive": getattr(guidance, "positive", None),
                          "negative": getattr(guidance, "negative", None)}
            options = copy_options(dict(self.model_options))
            transformer_options = options.setdefault("transformer_options", {})
            transformer_options["sample_sigmas"] = sigmas
            # The MODEL's own wrappers join its options' for this run, as ComfyUI's prepare_model_patcher does.
            transformer_options["wrappers"] = merge_nested_dicts(transformer_options.get("wrappers", {}),
                                                                 getattr(self.model_patcher, "wrappers", None) or {})
            around = get_all_wrappers("predict_noise", options, is_model_options=True)

            def predict(x: Any, sigma: Any, **_: Any) -> Any:
                return WrapperExecutor.new_class_executor(self.predict_noise, self, around).execute(
                    x, sigma, options, seed)

            token = _prediction.set(_Prediction(self.model_patcher, type(guidance)))
            try:
                if holder is None:
                    model_fn = predict
                else:
                    holder.denoiser = predict
                return sampler.sample(model_fn, x, sigmas, extra_args=extra_args, callback=callback, disable=disable,
                                      noise_sampler=noise_sampler)
            finally:
                _prediction.reset(token)

        run.noise = getattr(sampler, "noise", "gaussian")  # type: ignore[attr-defined] - Brownian noise stays
        return _sampling().Sampler(run, getattr(sampler, "name", "") or repr(sampler))


def sample(model: Any, noise: Any, positive: list, negative: list, cfg: float, device: Any, sampler: Any,
           sigmas: Any, model_options: dict[str, Any] | None = None, latent_image: Any = None,
           denoise_mask: Any = None, callback: Callable[..., None] | None = None, disable_pbar: bool = False,
           seed: int | None = None) -> Any:
    """Sample with a SAMPLER along ``sigmas`` under CFG (``device`` and ``model_options`` are the model's own)."""
    guider = CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    return guider.sample(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)


class KSampler(metaclass=_KSamplerNames):
    """ComfyUI's KSampler object: a model, a sampler name, a schedule and steps; ``sample`` runs it.

    ``KSampler.SAMPLERS`` / ``KSampler.SCHEDULERS`` list the registered names (for a node's ``INPUT_TYPES``).
    """

    def __init__(self, model: Any, steps: int, device: Any = None, sampler: str | None = None,
                 scheduler: str | None = None, denoise: float | None = None,
                 model_options: dict[str, Any] | None = None) -> None:
        if sampler is None or scheduler is None:
            raise ValueError("KSampler needs a sampler and a scheduler name (KSampler.SAMPLERS, KSampler.SCHEDULERS)")
        _lookup("sampler", sampler)
        _lookup("scheduler", scheduler)
        self.model = model
        self.device = device
        self.sampler = sampler
        self.scheduler = scheduler
        self.model_options = model_options if model_options is not None else getattr(model, "model_options", {})
        self.set_steps(steps, denoise)

    @property
    def SAMPLERS(self) -> list[str]:  # noqa: N802 - ComfyUI's name, on instances too
        return type(self).SAMPLERS

    @property
    def SCHEDULERS(self) -> list[str]:  # noqa: N802
        return type(self).SCHEDULERS

    def calculate_sigmas(self, steps: int) -> Any:
        return _sampling().calculate_sigmas(self.model.sampling, self.scheduler, steps, self.sampler)

    def set_steps(self, steps: int, denoise: float | None = None) -> None:
        """``sigmas``: ``steps`` steps; with ``denoise < 1`` the last ``steps`` of a ``steps / denoise`` schedule."""
        self.steps = steps
        self.denoise = 1.0 if denoise is None else denoise
        self.sigmas = _sampling().ksampler_sigmas(self.model.sampling, self.scheduler, self.sampler, steps,
                                                  self.denoise)

    def sample(self, noise: Any, positive: list, negative: list, cfg: float, latent_image: Any = None,
               start_step: int | None = None, last_step: int | None = None, force_full_denoise: bool = False,
               denoise_mask: Any = None, sigmas: Any = None, callback: Callable[..., None] | None = None,
               disable_pbar: bool = False, seed: int | None = None) -> Any:
        """Sample ``latent_image`` (raw; zeros when None) plus ``noise``; returns the raw latent."""
        import torch

        sigmas = self.sigmas if sigmas is None else sigmas
        if last_step is not None and last_step < len(sigmas) - 1:
            sigmas = sigmas[:last_step + 1].clone()
            if force_full_denoise:
                sigmas[-1] = 0
        if latent_image is None:
            latent_image = torch.zeros_like(noise)
        if start_step is not None:
            if start_step >= len(sigmas) - 1:
                return latent_image
            sigmas = sigmas[start_step:]
        return sample(self.model, noise, positive, negative, cfg, self.device, sampler_object(self.sampler), sigmas,
                      self.model_options, latent_image, denoise_mask, callback, disable_pbar, seed)
