"""Architecture detection from headers: sentinel tables, most specific match, helpful errors for unknown files."""

from __future__ import annotations

import pytest
import torch

from hearth.core.models.detection import AmbiguousModelError, UnknownModelError, detect, rank
from hearth.core.models.formats import ModelFormat
from hearth.core.models.loading import read_header
from tests.models.conftest import write_safetensors

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
CROSS_K = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
LABEL = "model.diffusion_model.label_emb.0.0.weight"

SD1 = ModelFormat("sd1", {UNET_IN: (320, 4, 3, 3), CROSS_K: (320, 768)}, prefixes=("model.diffusion_model.",))
SD2 = ModelFormat("sd2", {UNET_IN: (320, 4, 3, 3), CROSS_K: (320, 1024)})
SDXL = ModelFormat("sdxl", {UNET_IN: (320, 4, 3, 3), LABEL: (1280, 2816)})
INPAINT = ModelFormat("sd1-inpaint", {UNET_IN: (320, 9, 3, 3), CROSS_K: (320, 768)})
FORMATS = [SD1, SD2, SDXL, INPAINT]


def test_detects_by_shapes_from_the_header_only(tmp_path):
    path = write_safetensors(tmp_path / "v2.safetensors", {UNET_IN: torch.zeros(320, 4, 3, 3),
                                                          CROSS_K: torch.zeros(320, 1024)})
    assert detect(path, FORMATS) is SD2
    assert detect(read_header(path), FORMATS) is SD2
    assert detect({UNET_IN: (320, 9, 3, 3), CROSS_K: (320, 768)}, FORMATS) is INPAINT


def test_detects_from_tensors_in_memory():
    state = {UNET_IN: torch.zeros(320, 4, 3, 3), CROSS_K: torch.zeros(320, 768), "extra": torch.zeros(1)}
    assert detect(state, FORMATS) is SD1


def test_most_specific_full_match_wins():
    base = ModelFormat("unet-any", {UNET_IN: None})
    shapes = {UNET_IN: (320, 4, 3, 3), LABEL: (1280, 2816)}
    assert detect(shapes, [base, SDXL]) is SDXL
    assert detect({UNET_IN: (320, 4, 3, 3)}, [base, SDXL]) is base


def test_unknown_checkpoint_names_file_and_closest_families(tmp_path):
    path = write_safetensors(tmp_path / "mystery.safetensors", {UNET_IN: torch.zeros(320, 4, 3, 3),
                                                               CROSS_K: torch.zeros(320, 512)})
    with pytest.raises(UnknownModelError) as info:
        detect(path, FORMATS)
    message = str(info.value)
    assert "mystery.safetensors: unknown model architecture" in message
    assert "closest known families: sd1 (50% of its sentinel keys), sd2 (50%" in message
    assert [fmt.name for fmt, _ in info.value.closest] == ["sd1", "sd2", "sdxl"]
    assert "sd1-inpaint" not in message  # it matches nothing, so it is not "close"
    assert f"(sd1: {CROSS_K} has shape (320, 512), expected (320, 768))" in message


def test_nothing_close_says_so():
    with pytest.raises(UnknownModelError, match="state dict: unknown model architecture; no installed plugin"):
        detect({"text_encoder.weight": (3, 3)}, FORMATS)


def test_two_equally_specific_matches_are_a_reported_bug():
    twin = ModelFormat("sd1-copy", dict(SD1.sentinels))
    with pytest.raises(AmbiguousModelError, match="'sd1' and 'sd1-copy' both match"):
        detect({UNET_IN: (320, 4, 3, 3), CROSS_K: (320, 768)}, [twin, SD1])


def test_rank_orders_by_score():
    ranked = rank({UNET_IN: (320, 4, 3, 3), LABEL: (1280, 2816)}, FORMATS)
    assert [(fmt.name, score) for fmt, score in ranked][:3] == [("sdxl", 1.0), ("sd1", 0.5), ("sd2", 0.5)]


def test_detecting_a_safetensors_file_needs_no_torch(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = write_safetensors(tmp_path / "v1.safetensors", {UNET_IN: torch.zeros(320, 4, 3, 3),
                                                          CROSS_K: torch.zeros(320, 768)})
    code = ("import sys; import hearth.core.executor; from hearth.core.models import ModelFormat, detect; "
            f"fmt = ModelFormat('sd1', {{{UNET_IN!r}: (320, 4, 3, 3)}}); "
            f"print(detect({str(path)!r}, [fmt]).name, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sd1", "False"]
