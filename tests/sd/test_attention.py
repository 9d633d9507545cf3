"""On a CPU the SD models attend with ComfyUI's kernels (its CPU defaults), so their floats are ComfyUI's to the bit.

The references below are the formulas ComfyUI's CPU kernels evaluate, written out (issue 23): scaled
dot_product_attention gives the same values up to the last bits, which a UNet and 8-bit conversion turn into
flipped pixels.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hearth.core.models.attention import text_attention, unet_attention, vae_attention


def heads_of(t: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, width = t.shape
    return t.reshape(b, n, heads, width // heads).permute(0, 2, 1, 3).reshape(b * heads, n, width // heads)


def merged(t: torch.Tensor, batch: int, heads: int) -> torch.Tensor:
    return t.reshape(batch, heads, t.shape[1], t.shape[2]).permute(0, 2, 1, 3).reshape(batch, t.shape[1], -1)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, causal: bool = False) -> torch.Tensor:
    b = q.shape[0]
    split = [t.reshape(b, t.shape[1], heads, t.shape[2] // heads).transpose(1, 2) for t in (q, k, v)]
    return F.scaled_dot_product_attention(*split, is_causal=causal).transpose(1, 2).reshape(b, q.shape[1], -1)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_unet_attention_is_the_sub_quadratic_kernels_single_chunk(gen: torch.Generator) -> None:
    q, k, v = (torch.randn(2, n, 320, generator=gen) for n in (256, 77, 77))
    heads, d = 8, 40
    key_t = heads_of(k, heads).transpose(1, 2).contiguous()
    scores = torch.baddbmm(torch.empty(1, 1, 1), heads_of(q, heads), key_t, alpha=d ** -0.5, beta=0)
    expected = merged(torch.bmm(scores.softmax(dim=-1), heads_of(v, heads)), 2, heads)
    got = unet_attention(q, k, v, heads)
    assert torch.equal(got, expected)
    assert torch.allclose(got, sdpa(q, k, v, heads), atol=1e-5)


def test_more_queries_than_one_chunk_are_attended_in_chunks_of_4096(gen: torch.Generator) -> None:
    q = torch.randn(1, 4100, 8, generator=gen)
    got = unet_attention(q, q, q, 1)
    assert got.shape == q.shape
    assert torch.equal(got[:, 4096:], unet_attention(q[:, 4096:], q, q, 1))  # the last chunk on its own
    assert torch.allclose(got, sdpa(q, q, q, 1), atol=1e-5)


def test_text_attention_is_the_basic_kernel_with_comfyuis_causal_mask(gen: torch.Generator) -> None:
    q, k, v = (torch.randn(1, 77, 768, generator=gen) for _ in range(3))
    heads = 12
    scores = torch.einsum("b i d, b j d -> b i j", heads_of(q, heads), heads_of(k, heads)) * 64 ** -0.5
    scores += torch.full((77, 77), -torch.finfo(torch.float32).max).triu_(1)
    expected = merged(torch.einsum("b i j, b j d -> b i d", scores.softmax(dim=-1), heads_of(v, heads)), 1, heads)
    got = text_attention(q, k, v, heads, causal=True)
    assert torch.equal(got, expected)
    assert torch.allclose(got, sdpa(q, k, v, heads, causal=True), atol=1e-5)
    assert torch.equal(got[:, 0], v[:, 0])  # the first token sees only itself


def test_vae_attention_is_the_split_kernel(gen: torch.Generator) -> None:
    q, k, v = (torch.randn(1, 64, 8, 8, generator=gen) for _ in range(3))
    scores = torch.bmm(q.reshape(1, 64, 64).permute(0, 2, 1), k.reshape(1, 64, 64)) * 64 ** -0.5
    expected = torch.bmm(v.reshape(1, 64, 64), scores.softmax(dim=2).permute(0, 2, 1)).reshape(1, 64, 8, 8)
    assert torch.equal(vae_attention(q, k, v), expected)


def test_hearth_cpu_attention_sdpa_picks_the_fused_kernel(gen: torch.Generator, monkeypatch) -> None:
    q, k, v = (torch.randn(2, n, 64, generator=gen) for n in (64, 77, 77))
    monkeypatch.setenv("HEARTH_CPU_ATTENTION", "sdpa")
    assert torch.equal(unet_attention(q, k, v, 4), sdpa(q, k, v, 4))
