"""Checkpoint loading: safetensors memory-mapped without a copy, pickled checkpoints through safe ``torch.load``.

Two rules shape this module. Weights are never copied into process memory on the way in: a ``.safetensors`` file is
mapped once (copy-on-write, so a tensor patched in place never writes back to the file) and every tensor is a view
over the mapping, which the kernel pages in on first use and may drop again under pressure. Checkpoints are never
allowed to run code: pickles go through ``torch.load(weights_only=True)``.

Reading a header needs no torch and reads no tensor data, so architecture detection is cheap even for a 7 GB file.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

SAFETENSORS = "safetensors"
TORCH_ZIP = "torch-zip"  # torch.save's default format since 1.6: can be memory-mapped
TORCH_LEGACY = "torch-legacy"  # older pickles: read whole, there is no zip to map
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# A safetensors header larger than this is corrupt rather than large: real ones are a few hundred KB.
MAX_HEADER_BYTES = 100 * 1024 * 1024

ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
            "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


class CheckpointError(Exception):
    """A checkpoint could not be read. The message names the file, what is wrong, and what to do."""

    def __init__(self, path: str | os.PathLike[str], problem: str, hint: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" + (f"; {hint}" if hint else ""))


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as its file declares it: dtype (safetensors spelling, e.g. ``"F16"``), shape, byte range."""

    dtype: str
    shape: tuple[int, ...]
    offsets: tuple[int, int] | None = None  # within the data section; None for pickles

    @property
    def nbytes(self) -> int:
        return prod(self.shape) * ITEMSIZE.get(self.dtype, 0)


@dataclass(frozen=True)
class CheckpointHeader:
    """What a checkpoint holds, known without loading its tensors."""

    path: Path
    kind: str  # SAFETENSORS, TORCH_ZIP or TORCH_LEGACY
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str] = field(default_factory=dict)
    data_start: int = 0  # safetensors: file offset of the first tensor byte

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: info.shape for key, info in self.tensors.items()}

    @property
    def nbytes(self) -> int:
        return sum(info.nbytes for info in self.tensors.values())

    def keys_under(self, prefix: str) -> list[str]:
        return [key for key in self.tensors if key.startswith(prefix)]


def _open(path: Path):
    """Every read of a checkpoint goes through here: one place to count or fake file opens in tests."""
    return open(path, "rb")


def sniff(path: str | os.PathLike[str]) -> str:
    """Tell a checkpoint's format from its first bytes (suffixes lie: ``.bin`` and ``.pt`` are both in use)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "does not exist"
        raise CheckpointError(path, f"checkpoint {what}", "check the file name and the models folder")
    with _open(path) as f:
        head = f.read(9)
    if head[:2] == b"PK":
        return TORCH_ZIP
    if len(head) == 9 and head[8:9] == b"{":
        return SAFETENSORS
    if path.suffix.lower() in (".safetensors", ".sft"):
        return SAFETENSORS  # let the header parser say precisely what is wrong
    if head[:1] == b"\x80":  # pickle protocol marker
        return TORCH_LEGACY
    if not head:
        raise CheckpointError(path, "file is empty", "the download or copy did not finish; fetch it again")
    raise CheckpointError(path, "not a safetensors or PyTorch checkpoint (unrecognised first bytes)",
                          "Hearth reads .safetensors, .ckpt, .pt and .pth files")


def read_header(path: str | os.PathLike[str]) -> CheckpointHeader:
    """Keys, dtypes, shapes and metadata of a checkpoint, without loading tensor data.

    For safetensors this reads the JSON header only (no torch import). A zip pickle is opened memory-mapped, which
    reads its small pickle but no tensor bytes; a legacy pickle has to be read whole.
    """
    path = Path(path)
    kind = sniff(path)
    if kind == SAFETENSORS:
        return _safetensors_header(path)
    state, metadata = _torch_load(path, kind)
    tensors = {key: TensorInfo(dtype_name(t.dtype), tuple(t.shape)) for key, t in state.items()}
    return CheckpointHeader(path, kind, tensors, metadata)


def _safetensors_header(path: Path) -> CheckpointHeader:
    size = path.stat().st_size
    with _open(path) as f:
        raw_len = f.read(8)
        if len(raw_len) < 8:
            raise CheckpointError(path, f"truncated: {size} bytes is too short for a safetensors header",
                                  "the download or copy did not finish; fetch it again")
        (header_len,) = struct.unpack("<Q", raw_len)
        if header_len > MAX_HEADER_BYTES:
            raise CheckpointError(path, f"corrupt safetensors header (claims {header_len} bytes)",
                                  "the file is damaged or not a safetensors file")
        if 8 + header_len > size:
            raise CheckpointError(path, f"truncated: header needs {8 + header_len} bytes, file has {size}",
                                  "the download or copy did not finish; fetch it again")
        raw = f.read(header_len)
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(path, f"corrupt safetensors header ({exc})", "the file is damaged; fetch it again") from None
    metadata = {str(k): str(v) for k, v in (doc.pop("__metadata__", None) or {}).items()}
    data_start, data_len = 8 + header_len, size - 8 - header_len
    tensors: dict[str, TensorInfo] = {}
    for key, entry in doc.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(n) for n in entry["shape"]), entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(path, f"corrupt safetensors header: bad entry for tensor {key!r}",
                                  "the file is damaged; fetch it again") from None
        if dtype not in ITEMSIZE:
            raise CheckpointError(path, f"tensor {key!r} has dtype {dtype}, which Hearth cannot load",
                                  f"supported dtypes: {', '.join(ITEMSIZE)}")
        info = TensorInfo(dtype, shape, (int(begin), int(end)))
        if end - begin != info.nbytes or begin < 0:
            raise CheckpointError(path, f"corrupt safetensors header: tensor {key!r} spans {end - begin} bytes "
                                  f"but {dtype}{list(shape)} needs {info.nbytes}", "the file is damaged; fetch it again")
        if end > data_len:
            raise CheckpointError(path, f"truncated: tensor {key!r} ends at byte {data_start + end}, file has {size}",
                                  "the download or copy did not finish; fetch it again")
        tensors[key] = info
    return CheckpointHeader(path, SAFETENSORS, tensors, metadata, data_start)


# -- tensors ------------------------------------------------------------------------------------------------


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a safetensors dtype name."""
    import torch

    return {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
            "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2, "I64": torch.int64,
            "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U64": torch.uint64, "U32": torch.uint32,
            "U16": torch.uint16, "U8": torch.uint8, "BOOL": torch.bool}[name]


def dtype_name(dtype: torch.dtype) -> str:
    """The safetensors name of a torch dtype (``"?"`` for ones safetensors cannot hold)."""
    return next((name for name in ITEMSIZE if torch_dtype(name) == dtype), "?")


def write_safetensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str],
                      metadata: Mapping[str, str] | None = None) -> Path:
    """Write a .safetensors file whose bytes depend on its content only, atomically (a temporary name, then a
    rename: an interrupted write leaves no half file).

    ``safetensors.save_file`` writes the metadata in hash-map order, which changes from run to run; tiny models and
    fixtures are better with a stable sha256. The format: an 8-byte little-endian header size, a JSON header
    (space-padded to 8 bytes) of dtype, shape and byte range per tensor, then the raw data.
    """
    import torch

    path = Path(path)
    header: dict[str, object] = {"__metadata__": dict(sorted((metadata or {}).items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        kind = dtype_name(t.dtype)
        if kind == "?":
            raise ValueError(f"{path}: tensor {name!r} has dtype {t.dtype}, which safetensors cannot hold")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": kind, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        f.write(len(encoded).to_bytes(8, "little"))
        f.write(encoded)
        for data in blobs:
            f.write(data)
    os.replace(partial, path)
    return path


def load_state_dict(
    path: str | os.PathLike[str],
    *,
    keys: Iterable[str] | None = None,
    prefix: str = "",
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Load a checkpoint's tensors.

    :param keys: load only these keys (default: all, or all under ``prefix``).
    :param prefix: load only keys starting with it; the returned keys keep the prefix.
    :param device: where tensors go; default CPU, where safetensors stay memory-mapped (no copy in RAM).
    :param dtype: cast floating-point tensors to it; default keeps the stored dtype, so an fp16 checkpoint costs
        fp16 bytes and the model decides its compute dtype per layer.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, corrupt or unsafe.
    """
    path = Path(path)
    kind = sniff(path)
    convert = None
    if device is not None or dtype is not None:
        def convert(tensor: torch.Tensor) -> torch.Tensor:
            cast = dtype if dtype is not None and tensor.is_floating_point() else None
            return tensor.to(device=device, dtype=cast)

    if kind == SAFETENSORS:
        header = _safetensors_header(path)
        return _map_safetensors(header, _select(path, header.tensors, keys, prefix), convert)
    full, _ = _torch_load(path, kind)
    return {key: convert(full[key]) if convert else full[key] for key in _select(path, full, keys, prefix)}


def _select(path: Path, available: Mapping[str, Any], keys: Iterable[str] | None, prefix: str) -> list[str]:
    if keys is None:
        return [key for key in available if key.startswith(prefix)]
    wanted = list(keys)
    missing = [key for key in wanted if key not in available]
    if missing:
        shown = ", ".join(repr(k) for k in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CheckpointError(path, f"missing tensor(s) {shown}", "is this the right model file for this loader?")
    return wanted


def _map_safetensors(header: CheckpointHeader, keys: list[str], convert=None) -> dict[str, torch.Tensor]:
    import torch

    if sys.byteorder != "little":
        raise CheckpointError(header.path, "safetensors data is little-endian and this machine is not")
    state: dict[str, torch.Tensor] = {}
    if not keys:
        return state
    with _open(header.path) as f:
        # ACCESS_COPY (MAP_PRIVATE) gives a writable buffer, so torch.frombuffer needs no copy and an in-place
        # write lands in private pages instead of the file. Each tensor holds the mapping alive; the last one to
        # go unmaps it, which is what lets a dropped model give its memory back.
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    for key in keys:
        info = header.tensors[key]
        dtype = torch_dtype(info.dtype)
        begin, _ = info.offsets or (0, 0)
        count = prod(info.shape)
        if count == 0:
            state[key] = torch.empty(info.shape, dtype=dtype)
            continue
        flat = torch.frombuffer(mapping, dtype=dtype, count=count, offset=header.data_start + begin)
        tensor = flat.view(info.shape)
        if convert is not None:
            converted = convert(tensor)
            if converted.data_ptr() != tensor.data_ptr():
                # Copied to the GPU or to another dtype: the mapped pages are read and done with. Dropping them
                # now keeps a load's peak RSS at one copy of the weights, not the file plus the copy. (A private
                # mapping nobody wrote to re-reads the file if a page is touched again, so this is always safe.)
                _drop_pages(mapping, header.data_start + begin, info.nbytes)
            tensor = converted
        state[key] = tensor
    return state


def _drop_pages(mapping: mmap.mmap, offset: int, length: int) -> None:
    start = offset - offset % mmap.PAGESIZE
    if hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED, start, offset + length - start)


def _torch_load(path: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=kind == TORCH_ZIP)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            path, f"holds Python objects besides tensors ({str(exc).splitlines()[0]})",
            "Hearth loads pickles with weights_only=True and never runs their code; "
            "use a .safetensors version of this model") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the unpickler trips on, the file is at fault
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(path, f"truncated or corrupt PyTorch checkpoint ({first})",
                              "the download or copy did not finish; fetch it again") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        outer, obj = obj, obj["state_dict"]
    else:
        outer = {}
    if not isinstance(obj, Mapping):
        raise CheckpointError(path, f"holds a {type(obj).__name__}, not a state dict", "save model.state_dict()")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    metadata = {str(k): str(v) for k, v in outer.items() if isinstance(v, str | int | float | bool)}
    if not state:
        raise CheckpointError(path, "holds no tensors", "is this a model checkpoint?")
    return state, metadata


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix``, with the prefix removed (``model.diffusion_model.x`` -> ``x``)."""
    return {key[len(prefix):]: t for key, t in state.items() if key.startswith(prefix)}


def load_into(module: Any, state: Mapping[str, torch.Tensor], *, prefix: str = "", strict: bool = True,
              source: str | os.PathLike[str] = "state dict") -> Any:
    """Give ``module`` the tensors of ``state`` (keys under ``prefix``) without copying them, and return it.

    The module's parameters become the loaded tensors themselves (``load_state_dict(assign=True)``), so a module
    built on the ``meta`` device costs no memory until this call, and a memory-mapped checkpoint stays mapped,
    in its stored dtype. With ``strict``, missing or unexpected keys raise :class:`CheckpointError` naming
    ``source`` (pass the checkpoint path) and the first few keys.
    """
    tensors = strip_prefix(state, prefix) if prefix else dict(state)
    try:
        result = module.load_state_dict(tensors, strict=False, assign=True)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        detail = "; ".join(line.strip() for line in str(exc).splitlines()[1:4])
        raise CheckpointError(source, f"does not fit {type(module).__name__}: {detail}",
                              "is this checkpoint the model family it was detected as?") from None
    if strict and (result.missing_keys or result.unexpected_keys):
        problems = []
        for label, keys in (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)):
            if keys:
                shown = ", ".join(repr(prefix + k) for k in keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
                problems.append(f"{len(keys)} {label} key(s): {shown}")
        raise CheckpointError(source, f"does not fit {type(module).__name__}: " + "; ".join(problems),
                              "is this checkpoint the model family it was detected as?")
    return module
