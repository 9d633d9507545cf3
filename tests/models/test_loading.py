"""Checkpoint loading: memory-mapped safetensors, safe pickles, headers without tensors, errors that name the file."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from hearth.core.models.loading import CheckpointError, load_into, load_state_dict, read_header, strip_prefix
from tests.models.conftest import write_safetensors

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tensors() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "model.diffusion_model.w": torch.randn(8, 4).half(),
        "model.diffusion_model.b": torch.randn(8).bfloat16(),
        "first_stage_model.w": torch.randn(3, 3, 3),
        "cond_stage_model.ids": torch.arange(77).reshape(1, 77),
        "flags": torch.tensor([True, False]),
    }


def test_safetensors_keeps_stored_dtypes_and_values(tmp_path, tensors):
    path = write_safetensors(tmp_path / "m.safetensors", tensors)
    state = load_state_dict(path)
    assert set(state) == set(tensors)
    for key, tensor in tensors.items():
        assert state[key].dtype == tensor.dtype, key
        assert torch.equal(state[key], tensor), key


def _file_mappings(path: Path) -> list[tuple[int, int]]:
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith(str(path)):
            lo, hi = line.split()[0].split("-")
            ranges.append((int(lo, 16), int(hi, 16)))
    return ranges


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_safetensors_tensors_are_views_of_the_mapped_file(tmp_path):
    big = {f"layer{i}.weight": torch.randn(256, 256) for i in range(8)}
    path = write_safetensors(tmp_path / "big.safetensors", big)
    state = load_state_dict(path)
    mappings = _file_mappings(path)
    assert mappings, "the checkpoint is not memory-mapped"
    for key, tensor in state.items():
        ptr = tensor.data_ptr()
        assert any(lo <= ptr < hi for lo, hi in mappings), f"{key} was copied out of the mapping"
    # Copy-on-write: writing to a loaded tensor never changes the file.
    state["layer0.weight"].zero_()
    reread = load_state_dict(path)["layer0.weight"]
    assert torch.equal(reread, big["layer0.weight"])
    del state, reread, tensor
    assert not _file_mappings(path), "dropping every tensor must unmap the file"


def test_header_and_metadata_without_tensors(tmp_path, tensors):
    path = write_safetensors(tmp_path / "m.safetensors", tensors, metadata={"modelspec.architecture": "toy"})
    header = read_header(path)
    assert header.metadata["modelspec.architecture"] == "toy"
    assert header.shapes["model.diffusion_model.w"] == (8, 4)
    assert header.tensors["model.diffusion_model.b"].dtype == "BF16"
    assert header.nbytes == sum(t.numel() * t.element_size() for t in tensors.values())
    assert header.keys_under("model.diffusion_model.") == ["model.diffusion_model.b", "model.diffusion_model.w"]


def test_reading_a_safetensors_header_does_not_import_torch(tmp_path, tensors):
    path = write_safetensors(tmp_path / "m.safetensors", tensors)
    code = ("import sys; from hearth.core.models.loading import read_header; "
            f"h = read_header({str(path)!r}); assert 'torch' not in sys.modules, 'torch imported'; print(len(h.tensors))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(tensors))


def test_prefix_keys_dtype_and_strip(tmp_path, tensors):
    path = write_safetensors(tmp_path / "m.safetensors", tensors)
    unet = load_state_dict(path, prefix="model.diffusion_model.", dtype=torch.float32)
    assert set(unet) == {"model.diffusion_model.w", "model.diffusion_model.b"}
    assert all(t.dtype == torch.float32 for t in unet.values())
    assert set(strip_prefix(unet, "model.diffusion_model.")) == {"w", "b"}
    ids = load_state_dict(path, keys=["cond_stage_model.ids"], dtype=torch.float16)
    assert ids["cond_stage_model.ids"].dtype == torch.int64  # integers are never cast
    with pytest.raises(CheckpointError, match=r"m\.safetensors: missing tensor\(s\) 'nope'"):
        load_state_dict(path, keys=["nope"])


@pytest.mark.parametrize("zipfile_format", [True, False])
def test_pickled_checkpoint_unwraps_state_dict(tmp_path, tensors, zipfile_format):
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": tensors, "global_step": 470000, "epoch": 3}, path,
               _use_new_zipfile_serialization=zipfile_format)
    state = load_state_dict(path)
    assert set(state) == set(tensors)
    assert all(torch.equal(state[k], t) and state[k].dtype == t.dtype for k, t in tensors.items())
    header = read_header(path)
    assert header.kind == ("torch-zip" if zipfile_format else "torch-legacy")
    assert header.metadata["global_step"] == "470000"
    assert header.shapes["first_stage_model.w"] == (3, 3, 3)


def test_bare_state_dict_pt(tmp_path, tensors):
    path = tmp_path / "m.pt"
    torch.save(tensors, path)
    assert set(load_state_dict(path)) == set(tensors)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.ckpt: holds Python objects besides tensors.*safetensors"):
        load_state_dict(path)
    assert "must never run" not in capsys.readouterr().out


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nothere\.safetensors: checkpoint does not exist"):
        load_state_dict(tmp_path / "nothere.safetensors")


def test_truncated_safetensors_names_the_file(tmp_path, tensors):
    path = write_safetensors(tmp_path / "cut.safetensors", tensors)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: truncated: tensor .* ends at byte"):
        read_header(path)
    path.write_bytes(data[:50])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: truncated: header needs"):
        load_state_dict(path)
    path.write_bytes(data[:4])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: truncated: 4 bytes"):
        load_state_dict(path)


def test_corrupt_safetensors_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    raw = b"{not json at all"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: corrupt safetensors header"):
        read_header(path)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    with pytest.raises(CheckpointError, match=r"tensor 'w' spans 8 bytes but F32\[4\] needs 16"):
        read_header(path)
    header = json.dumps({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(CheckpointError, match=r"dtype C64, which Hearth cannot load"):
        read_header(path)


def test_truncated_and_foreign_pickles(tmp_path, tensors):
    path = tmp_path / "cut.ckpt"
    torch.save({"state_dict": tensors}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: truncated or corrupt PyTorch checkpoint"):
        load_state_dict(path)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.ckpt: file is empty"):
        load_state_dict(empty)
    text = tmp_path / "notes.pt"
    text.write_text("hello, not a model")
    with pytest.raises(CheckpointError, match=r"notes\.pt: not a safetensors or PyTorch checkpoint"):
        load_state_dict(text)
    listing = tmp_path / "list.pt"
    torch.save([1, 2, 3], listing)
    with pytest.raises(CheckpointError, match=r"list\.pt: holds a list, not a state dict"):
        load_state_dict(listing)


def test_load_into_assigns_without_copy_and_names_bad_keys(tmp_path):
    with torch.device("meta"):
        module = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    source = {f"model.diffusion_model.{k}": torch.randn(v.shape).half() for k, v in module.state_dict().items()}
    path = write_safetensors(tmp_path / "unet.safetensors", source)
    state = load_state_dict(path)
    load_into(module, state, prefix="model.diffusion_model.", source=path)
    assert module[0].weight.dtype == torch.float16  # stored dtype kept
    assert module[0].weight.data_ptr() == state["model.diffusion_model.0.weight"].data_ptr()
    with torch.device("meta"):
        deeper = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(2, 1))
    with pytest.raises(CheckpointError, match=r"unet\.safetensors: does not fit Sequential: 2 missing key\(s\): "
                                              r"'model\.diffusion_model\.2\.weight'"):
        load_into(deeper, state, prefix="model.diffusion_model.", source=path)
    with torch.device("meta"):
        wider = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3))
    with pytest.raises(CheckpointError, match=r"unet\.safetensors: does not fit Sequential: size mismatch for 1\.weight"):
        load_into(wider, state, prefix="model.diffusion_model.", source=path)


def test_casting_on_load_holds_one_copy_at_a_time(tmp_path):
    # 128 MiB of fp16 cast to 256 MiB of fp32: each mapped page is dropped once copied, so the peak stays near
    # the fp32 result itself instead of the result plus the whole mapped file. The baseline, measured the same
    # way in the same environment, is a process that just builds the 256 MiB of fp32 tensors.
    path = write_safetensors(tmp_path / "half.safetensors", {f"w{i}": torch.zeros(1024, 1024, dtype=torch.float16)
                                                             for i in range(64)})
    probe = """
import resource, torch
from hearth.core.models.loading import load_state_dict
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()
torch.zeros(1024, dtype=torch.float16).to(torch.float32)  # torch's first-cast set-up is not the loader's
load_state_dict({path!r}, keys=["w0"], dtype=torch.float32)
before = rss()
{work}
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
"""
    load = "state = load_state_dict({!r}, dtype=torch.float32)\nassert all(t.dtype == torch.float32 for t in state.values())"
    build = "state = {f'w{i}': torch.ones(1024, 1024, dtype=torch.float32) for i in range(64)}"

    def peak(work: str) -> int:
        code = probe.replace("{path!r}", repr(str(path))).replace("{work}", work)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return int(out.stdout)

    baseline = peak(build)
    loaded = peak(load.format(str(path)))
    mapped_file = 64 * 1024 * 1024 * 2
    assert loaded < baseline + mapped_file / 2, (
        f"loading peaked {(loaded - baseline) / 2**20:.0f} MiB above building the same fp32 tensors "
        f"(allowed: half the {mapped_file / 2**20:.0f} MiB file)")


