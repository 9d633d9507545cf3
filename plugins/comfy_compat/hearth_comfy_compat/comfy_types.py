"""ComfyUI's ``comfy.comfy_types`` (and ``comfy.comfy_types.node_typing``): the type names and typing helpers
packs annotate their nodes with.

``IO`` is a string enum of the socket type names, so ``IO.IMAGE == "IMAGE"`` and an ``IO`` member can stand
wherever a type string goes (``RETURN_TYPES = (IO.IMAGE,)``, JSON included). ``IO.ANY`` is ``"*"``; comparing
with ``!=`` follows ComfyUI's socket rule: ``"*"`` matches everything, and comma-separated unions match any type
they contain (``IO.NUMBER != "INT"`` is False).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal, Protocol, TypedDict

import torch


class IO(StrEnum):
    """Socket type names of node inputs and outputs."""

    STRING = "STRING"
    IMAGE = "IMAGE"
    MASK = "MASK"
    LATENT = "LATENT"
    BOOLEAN = "BOOLEAN"
    INT = "INT"
    FLOAT = "FLOAT"
    COMBO = "COMBO"
    CONDITIONING = "CONDITIONING"
    SAMPLER = "SAMPLER"
    SIGMAS = "SIGMAS"
    GUIDER = "GUIDER"
    NOISE = "NOISE"
    CLIP = "CLIP"
    CONTROL_NET = "CONTROL_NET"
    VAE = "VAE"
    MODEL = "MODEL"
    CLIP_VISION = "CLIP_VISION"
    CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
    STYLE_MODEL = "STYLE_MODEL"
    GLIGEN = "GLIGEN"
    UPSCALE_MODEL = "UPSCALE_MODEL"
    AUDIO = "AUDIO"
    WEBCAM = "WEBCAM"
    POINT = "POINT"
    FACE_ANALYSIS = "FACE_ANALYSIS"
    BBOX = "BBOX"
    SEGS = "SEGS"
    VIDEO = "VIDEO"
    ANY = "*"
    NUMBER = "FLOAT,INT"
    PRIMITIVE = "STRING,FLOAT,INT,BOOLEAN"

    def __ne__(self, value: object) -> bool:
        # Socket compatibility, not string inequality: packs test links with `!=`.
        if self == "*" or value == "*":
            return False
        if not isinstance(value, str):
            return True
        mine, theirs = frozenset(self.split(",")), frozenset(value.split(","))
        return not (mine <= theirs or theirs <= mine)

    __hash__ = str.__hash__  # defining __ne__ must not make the members unhashable


class RemoteInputOptions(TypedDict, total=False):
    """A COMBO whose choices the browser fetches from ``route`` (``{"remote": {...}}`` in the input's options)."""

    route: str
    refresh_button: bool
    control_after_refresh: Literal["first", "last"]
    timeout: int
    max_retries: int
    refresh: int


class MultiSelectOptions(TypedDict, total=False):
    """A COMBO that takes several choices (``{"multi_select": {...}}``)."""

    placeholder: str
    chip: bool


class InputTypeOptions(TypedDict, total=False):
    """The options dict of one input (``("INT", {...})``); every key is optional."""

    default: Any
    defaultInput: bool
    forceInput: bool
    lazy: bool
    rawLink: bool
    tooltip: str
    min: float
    max: float
    step: float
    round: float
    label_on: str
    label_off: str
    multiline: bool
    placeholder: str
    dynamicPrompts: bool
    image_upload: bool
    image_folder: Literal["input", "output", "temp"]
    remote: RemoteInputOptions
    control_after_generate: bool
    options: list[Any]
    multi_select: MultiSelectOptions


class HiddenInputTypeDict(TypedDict, total=False):
    node_id: Literal["UNIQUE_ID"]
    unique_id: Literal["UNIQUE_ID"]
    prompt: Literal["PROMPT"]
    extra_pnginfo: Literal["EXTRA_PNGINFO"]
    dynprompt: Literal["DYNPROMPT"]


class InputTypeDict(TypedDict, total=False):
    """What ``INPUT_TYPES()`` returns: ``required``, ``optional`` and ``hidden`` inputs."""

    required: dict[str, tuple[Any, ...]]
    optional: dict[str, tuple[Any, ...]]
    hidden: HiddenInputTypeDict


class ComfyNodeABC(ABC):
    """A base class naming the attributes a node class has; subclasses define ``INPUT_TYPES`` and the rest."""

    DESCRIPTION: str
    CATEGORY: str
    EXPERIMENTAL: bool
    DEPRECATED: bool
    OUTPUT_NODE: bool
    INPUT_IS_LIST: bool
    OUTPUT_IS_LIST: tuple[bool, ...]
    RETURN_TYPES: tuple[Any, ...]
    RETURN_NAMES: tuple[str, ...]
    OUTPUT_TOOLTIPS: tuple[str, ...]
    FUNCTION: str

    @classmethod
    @abstractmethod
    def INPUT_TYPES(cls) -> InputTypeDict:  # noqa: N802 - ComfyUI's name
        return {"required": {}}


class CheckLazyMixin:
    """``check_lazy_status`` asking for every lazy input not evaluated yet (those that arrive as ``None``)."""

    def check_lazy_status(self, **kwargs: Any) -> list[str]:
        return [name for name, value in kwargs.items() if value is None]


class FileLocator(TypedDict, total=False):
    filename: str
    subfolder: str
    type: Literal["input", "output", "temp"]


class UnetApplyFunction(Protocol):
    """``apply_model(x, sigma, **c) -> denoised``, what a ``model_function_wrapper`` receives first."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor, **kwargs: Any) -> torch.Tensor: ...


class UnetApplyConds(TypedDict, total=False):
    c_concat: torch.Tensor | None
    c_crossattn: torch.Tensor | None
    control: torch.Tensor | None
    transformer_options: dict[str, Any] | None


class UnetParams(TypedDict):
    """The second argument of a ``model_function_wrapper``."""

    input: torch.Tensor
    timestep: torch.Tensor
    c: UnetApplyConds
    cond_or_uncond: list[int]


UnetWrapperFunction = Callable[[UnetApplyFunction, UnetParams], torch.Tensor]

__all__ = ["IO", "CheckLazyMixin", "ComfyNodeABC", "FileLocator", "HiddenInputTypeDict", "InputTypeDict",
           "InputTypeOptions", "MultiSelectOptions", "RemoteInputOptions", "StrEnum", "UnetApplyConds",
           "UnetApplyFunction", "UnetParams", "UnetWrapperFunction"]
