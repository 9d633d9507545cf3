"""ComfyUI's ``comfy.cli_args``: ``parser`` with every flag ComfyUI's launcher takes, and ``args`` holding their
defaults, for packs that read a flag at import time (``args.preview_method``, ``args.disable_metadata``...).

Hearth's own options are not ComfyUI's and Hearth never parses ComfyUI's command line (``args`` is always
``parser.parse_args([])``, as ComfyUI's own is when ``comfy.options.args_parsing`` is off), so every value is
ComfyUI's default; the listen address and port are ComfyUI's defaults, which ``comfy serve`` shares. A pack may
still set a value (``args.preview_method = ...``): it is a plain ``argparse.Namespace``.
"""

from __future__ import annotations

import argparse
import enum
import os
from typing import Any


class EnumAction(argparse.Action):
    """An argparse action whose choices are an ``Enum``'s values, storing the member."""

    def __init__(self, **kwargs: Any) -> None:
        enum_type = kwargs.pop("type", None)
        if not (isinstance(enum_type, type) and issubclass(enum_type, enum.Enum)):
            raise TypeError("EnumAction needs type= an Enum class")
        choices = tuple(member.value for member in enum_type)
        kwargs.setdefault("choices", choices)
        kwargs.setdefault("metavar", f"[{','.join(choices)}]")
        super().__init__(**kwargs)
        self._enum = enum_type

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, self._enum(values))


class LatentPreviewMethod(enum.Enum):
    NoPreviews = "none"
    Auto = "auto"
    Latent2RGB = "latent2rgb"
    TAESD = "taesd"


class PerformanceFeature(enum.Enum):
    Fp16Accumulation = "fp16_accumulation"
    Fp8MatrixMultiplication = "fp8_matrix_mult"
    CublasOps = "cublas_ops"
    AutoTune = "autotune"


DEFAULT_VERSION_STRING = "comfyanonymous/ComfyUI@latest"


def is_valid_directory(path: str) -> str:
    """``path`` if it is a readable folder; else argparse's error naming it."""
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path!r} is not a folder")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{path!r} cannot be read")
    return path


_SWITCHES = """
auto-launch disable-auto-launch disable-ipex-optimize supports-fp8-compute cpu-vae force-channels-last
disable-xformers async-offload disable-async-offload disable-smart-memory deterministic mmap-torch-files
disable-mmap dont-print-server quick-test-for-ci windows-standalone-build disable-metadata
disable-all-custom-nodes disable-api-nodes multi-user log-stdout enable-compress-response-body
enable-manager disable-manager-ui enable-manager-legacy-ui disable-assets-autoscan disable-pinned-memory
"""

# Flags of which at most one may be given, as in ComfyUI.
_EXCLUSIVE = (
    "cuda-malloc disable-cuda-malloc",
    "force-fp32 force-fp16",
    "fp32-unet fp64-unet bf16-unet fp16-unet fp8_e4m3fn-unet fp8_e5m2-unet fp8_e8m0fnu-unet",
    "fp16-vae fp32-vae bf16-vae",
    "fp8_e4m3fn-text-enc fp8_e5m2-text-enc fp16-text-enc fp32-text-enc bf16-text-enc",
    "use-split-cross-attention use-quad-cross-attention use-pytorch-cross-attention use-sage-attention "
    "use-flash-attention",
    "force-upcast-attention dont-upcast-attention",
    "gpu-only highvram normalvram lowvram novram cpu",
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ComfyUI", description="ComfyUI's launcher flags, as Hearth's "
                                     "compatibility layer knows them (Hearth itself is run with `comfy`).")
    add = parser.add_argument
    add("--listen", type=str, default="127.0.0.1", metavar="IP", nargs="?", const="0.0.0.0,::")
    add("--port", type=int, default=8188)
    add("--tls-keyfile", type=str)
    add("--tls-certfile", type=str)
    add("--enable-cors-header", type=str, default=None, metavar="ORIGIN", nargs="?", const="*")
    add("--max-upload-size", type=float, default=100)
    for folder in ("base", "output", "temp", "input", "models"):
        add(f"--{folder}-directory", type=str, default=None)
    add("--extra-model-paths-config", type=str, default=None, metavar="PATH", nargs="+", action="append")
    add("--cuda-device", type=int, default=None, metavar="DEVICE_ID")
    add("--default-device", type=int, default=None, metavar="DEFAULT_DEVICE_ID")
    add("--directml", type=int, nargs="?", metavar="DIRECTML_DEVICE", const=-1)
    add("--oneapi-device-selector", type=str, default=None, metavar="SELECTOR_STRING")
    add("--preview-method", type=LatentPreviewMethod, default=LatentPreviewMethod.NoPreviews, action=EnumAction)
    add("--preview-size", type=int, default=512)
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache-classic", action="store_true")
    cache.add_argument("--cache-lru", type=int, default=0)
    cache.add_argument("--cache-none", action="store_true")
    cache.add_argument("--cache-ram", nargs="?", const=4.0, type=float, default=0)
    for group in _EXCLUSIVE:
        exclusive = parser.add_mutually_exclusive_group()
        for flag in group.split():
            exclusive.add_argument(f"--{flag}", action="store_true")
    for flag in _SWITCHES.split():
        add(f"--{flag}", action="store_true")
    add("--reserve-vram", type=float, default=None)
    add("--default-hashing-function", type=str, choices=["md5", "sha1", "sha256", "sha512"], default="sha256")
    add("--fast", nargs="*", type=PerformanceFeature)
    add("--whitelist-custom-nodes", type=str, nargs="+", default=[])
    add("--verbose", default="INFO", const="DEBUG", nargs="?",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    add("--front-end-version", type=str, default=DEFAULT_VERSION_STRING)
    add("--front-end-root", type=is_valid_directory, default=None)
    add("--user-directory", type=is_valid_directory, default=None)
    add("--comfy-api-base", type=str, default="https://api.comfy.org")
    add("--database-url", type=str, default="sqlite:///:memory:")
    return parser


def _settle(parsed: argparse.Namespace) -> argparse.Namespace:
    """The values ComfyUI derives from others after parsing."""
    if parsed.windows_standalone_build:
        parsed.auto_launch = True
    if parsed.disable_auto_launch:
        parsed.auto_launch = False
    if parsed.force_fp16:
        parsed.fp16_unet = True
    # No --fast: nothing; --fast alone: every feature; --fast a b: those.
    parsed.fast = set() if parsed.fast is None else set(parsed.fast or PerformanceFeature)
    return parsed


parser = _build_parser()
args = _settle(parser.parse_args([]))
