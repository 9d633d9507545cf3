"""SAMPLER nodes with options, ComfyUI's names: SamplerEulerAncestral, SamplerEulerAncestralCFGPP, SamplerLMS, SamplerDPMPP_2M_SDE,
SamplerDPMPP_3M_SDE, SamplerDPMPP_SDE, SamplerDPMPP_2S_Ancestral, SamplerDPMAdaptative, SamplerER_SDE,
SamplerSEEDS2 and SamplerSASolver.

Each gives this pack's sampler of that name with the node's widgets as its options (ComfyUI's
``comfy_extras/nodes_custom_sampler.py``). ``noise_device`` picks the SDE sampler's ``_gpu`` variant for "gpu",
as ComfyUI does: its Brownian tree then draws on the latent's device (the same numbers as "cpu" on a CPU).
"""

from __future__ import annotations

from typing import Any

CATEGORY = "sampling/samplers"


def _float(default: float, high: float = 100.0, *, advanced: bool = True) -> tuple[str, dict[str, Any]]:
    options: dict[str, Any] = {"default": default, "min": 0.0, "max": high, "step": 0.01, "round": False}
    if advanced:
        options["advanced"] = True
    return ("FLOAT", options)


def _noise_device() -> tuple[list[str], dict[str, Any]]:
    return (["gpu", "cpu"], {"advanced": True})


def _on(noise_device: str, name: str) -> str:
    """The SDE sampler ``name`` whose Brownian noise is drawn on ``noise_device`` ("cpu", or "gpu": ``name_gpu``)."""
    return name if noise_device == "cpu" else f"{name}_gpu"


class _SamplerNode:
    """What every node here declares alike: its category, its one SAMPLER output and its method."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"


def _sampler(name: str, **options: Any) -> tuple[Any]:
    from .installed import lookup
    from .sampling import Sampler

    return (Sampler(lookup("sampler", name), name, options),)


class SamplerEulerAncestral(_SamplerNode):
    DESCRIPTION = "Euler ancestral: eta scales the fresh noise of each step (0: plain Euler), s_noise its amount."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"eta": _float(1.0), "s_noise": _float(1.0)}}

    def get_sampler(self, eta, s_noise):
        return _sampler("euler_ancestral", eta=eta, s_noise=s_noise)


class SamplerEulerAncestralCFGPP(_SamplerNode):
    DISPLAY_NAME = "SamplerEulerAncestralCFG++"
    DESCRIPTION = "Euler ancestral with CFG++ (the step's direction from the negative prediction), eta and s_noise."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"eta": _float(1.0, 1.0, advanced=False), "s_noise": _float(1.0, 10.0, advanced=False)}}

    def get_sampler(self, eta, s_noise):
        return _sampler("euler_ancestral_cfg_pp", eta=eta, s_noise=s_noise)


class SamplerDPMPP_2S_Ancestral(_SamplerNode):  # noqa: N801 (ComfyUI's class name is the node name)
    DESCRIPTION = "DPM-Solver++(2S) ancestral with its eta and s_noise."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"eta": _float(1.0, advanced=False), "s_noise": _float(1.0, advanced=False)}}

    def get_sampler(self, eta, s_noise):
        return _sampler("dpmpp_2s_ancestral", eta=eta, s_noise=s_noise)


class SamplerLMS(_SamplerNode):
    DESCRIPTION = "Linear multistep with the chosen order."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"order": ("INT", {"default": 4, "min": 1, "max": 100, "advanced": True})}}

    def get_sampler(self, order):
        return _sampler("lms", order=order)


class SamplerDPMPP_SDE(_SamplerNode):  # noqa: N801
    DESCRIPTION = "DPM-Solver++ SDE with its eta, s_noise and r (where its intermediate step falls)."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"eta": _float(1.0), "s_noise": _float(1.0), "r": _float(0.5),
                             "noise_device": _noise_device()}}

    def get_sampler(self, eta, s_noise, r, noise_device):
        if not r > 0:
            raise ValueError(f"SamplerDPMPP_SDE: r must be above 0 (the fraction of the step the first stage takes), "
                             f"got {r}")
        return _sampler(_on(noise_device, "dpmpp_sde"), eta=eta, s_noise=s_noise, r=r)


class SamplerDPMPP_2M_SDE(_SamplerNode):  # noqa: N801
    DESCRIPTION = "DPM-Solver++(2M) SDE with its solver type (midpoint or heun), eta and s_noise."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"solver_type": (["midpoint", "heun"],), "eta": _float(1.0), "s_noise": _float(1.0),
                             "noise_device": _noise_device()}}

    def get_sampler(self, solver_type, eta, s_noise, noise_device):
        return _sampler(_on(noise_device, "dpmpp_2m_sde"), eta=eta, s_noise=s_noise, solver_type=solver_type)


class SamplerDPMPP_3M_SDE(_SamplerNode):  # noqa: N801
    DESCRIPTION = "DPM-Solver++(3M) SDE with its eta and s_noise."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"eta": _float(1.0), "s_noise": _float(1.0), "noise_device": _noise_device()}}

    def get_sampler(self, eta, s_noise, noise_device):
        return _sampler(_on(noise_device, "dpmpp_3m_sde"), eta=eta, s_noise=s_noise)


class SamplerDPMAdaptative(_SamplerNode):
    DESCRIPTION = "Adaptive-step DPM-Solver with its order, tolerances and step-size controller."

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "order": ("INT", {"default": 3, "min": 2, "max": 3, "advanced": True}),
            "rtol": _float(0.05), "atol": _float(0.0078), "h_init": _float(0.05), "pcoeff": _float(0.0),
            "icoeff": _float(1.0), "dcoeff": _float(0.0), "accept_safety": _float(0.81), "eta": _float(0.0),
            "s_noise": _float(1.0),
        }}

    def get_sampler(self, order, rtol, atol, h_init, pcoeff, icoeff, dcoeff, accept_safety, eta, s_noise):
        if order not in (2, 3):
            raise ValueError(f"SamplerDPMAdaptative: order must be 2 or 3, got {order}")
        return _sampler("dpm_adaptive", order=order, rtol=rtol, atol=atol, h_init=h_init, pcoeff=pcoeff,
                        icoeff=icoeff, dcoeff=dcoeff, accept_safety=accept_safety, eta=eta, s_noise=s_noise)


class SamplerER_SDE(_SamplerNode):  # noqa: N801
    DESCRIPTION = ("ER-SDE-Solver with the chosen noise scaler: the paper's ER-SDE, the reverse-time SDE, or the "
                   "ODE (no noise); eta scales the stochastic part and 0 gives the ODE.")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        eta = _float(1.0, 10.0)
        eta[1]["tooltip"] = ("Stochastic strength of SDEs.\nWhen eta=0, they reduce to deterministic ODE.\nLarge eta "
                             "may cause invalid outputs. If this occurs, try decreasing this value.")
        return {"required": {"solver_type": (["ER-SDE", "Reverse-time SDE", "ODE"],),
                             "max_stage": ("INT", {"default": 3, "min": 1, "max": 3, "advanced": True}),
                             "eta": eta, "s_noise": _float(1.0)}}

    def get_sampler(self, solver_type, max_stage, eta, s_noise):
        scalers = {"ER-SDE": lambda lam: lam * ((lam**0.3).exp() + 10.0) ** eta,
                   "Reverse-time SDE": lambda lam: lam ** (eta + 1), "ODE": lambda lam: lam}
        if solver_type not in scalers:
            raise ValueError(f"SamplerER_SDE: solver_type must be one of {list(scalers)}, got {solver_type!r}")
        if solver_type == "ODE" or eta == 0:
            solver_type, s_noise = "ODE", 0.0
        return _sampler("er_sde", s_noise=s_noise, noise_scaler=scalers[solver_type], max_stage=max_stage)


class SamplerSEEDS2(_SamplerNode):
    DESCRIPTION = ("This sampler node can represent multiple samplers:\n\nseeds_2\n- default setting\n\n"
                   "exp_heun_2_x0\n- solver_type=phi_2, r=1.0, eta=0.0\n\nexp_heun_2_x0_sde\n- solver_type=phi_2, "
                   "r=1.0, eta=1.0, s_noise=1.0")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        eta, s_noise = _float(1.0), _float(1.0)
        eta[1]["tooltip"], s_noise[1]["tooltip"] = "Stochastic strength", "SDE noise multiplier"
        r = ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01, "round": False, "advanced": True,
                       "tooltip": "Relative step size for the intermediate stage (c2 node)"})
        return {"required": {"solver_type": (["phi_1", "phi_2"],), "eta": eta, "s_noise": s_noise, "r": r}}

    def get_sampler(self, solver_type, eta, s_noise, r):
        if not 0 < r <= 1:
            raise ValueError(f"SamplerSEEDS2: r must be in (0, 1], got {r}")
        return _sampler("seeds_2", eta=eta, s_noise=s_noise, r=r, solver_type=solver_type)


class SamplerSASolver(_SamplerNode):
    DESCRIPTION = ("SA-Solver (stochastic Adams predictor-corrector): stochastic with strength eta between the "
                   "sde_start and sde_end fractions of the model's schedule, an ODE elsewhere.")

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        def percent(default: float) -> tuple[str, dict[str, Any]]:
            return ("FLOAT", {"default": default, "min": 0.0, "max": 1.0, "step": 0.001, "advanced": True})

        def order(default: int, low: int) -> tuple[str, dict[str, Any]]:
            return ("INT", {"default": default, "min": low, "max": 6, "advanced": True})

        return {"required": {
            "model": ("MODEL",), "eta": _float(1.0, 10.0), "sde_start_percent": percent(0.2),
            "sde_end_percent": percent(0.8), "s_noise": _float(1.0), "predictor_order": order(3, 1),
            "corrector_order": order(4, 0), "use_pece": ("BOOLEAN", {"default": False, "advanced": True}),
            "simple_order_2": ("BOOLEAN", {"default": False, "advanced": True}),
        }}

    def get_sampler(self, model, eta, sde_start_percent, sde_end_percent, s_noise, predictor_order, corrector_order,
                    use_pece, simple_order_2):
        from .sa_solver import tau_interval
        from .schedules import percent_to_sigma

        sampling = model.sampling
        tau = tau_interval(percent_to_sigma(sampling, sde_start_percent), percent_to_sigma(sampling, sde_end_percent),
                           eta)
        return _sampler("sa_solver", tau_func=tau, s_noise=s_noise, predictor_order=predictor_order,
                        corrector_order=corrector_order, use_pece=use_pece, simple_order_2=simple_order_2)


NODES = {cls.__name__: cls for cls in (SamplerSASolver, SamplerSEEDS2, SamplerER_SDE, SamplerEulerAncestral, SamplerEulerAncestralCFGPP, SamplerDPMPP_2S_Ancestral, SamplerLMS,
                                       SamplerDPMPP_SDE, SamplerDPMPP_2M_SDE, SamplerDPMPP_3M_SDE,
                                       SamplerDPMAdaptative)}
