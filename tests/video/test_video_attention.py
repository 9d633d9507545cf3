"""On a CPU the video models attend with ComfyUI's kernels, as the SD models do (issue 23): Wan's transformer and
AnimateDiff's motion modules through ComfyUI's sub-quadratic kernel, Wan's VAE through its "split" kernel. The
references are those kernels' formulas written out; ``scaled_dot_product_attention`` agrees only to ~1e-6, which a
sampler turns into flipped pixels. The memory estimate counts the score matrix the CPU kernel holds."""

from __future__ import annotations

import pytest
import torch
from hearth_video.animatediff_module import TemporalAttention
from hearth_video.wan_model import Attention, WanModel
from hearth_video.wan_tiny import TINY_DIT
from hearth_video.wan_vae import AttentionBlock


def heads_of(t: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, width = t.shape
    return t.reshape(b, n, heads, width // heads).permute(0, 2, 1, 3).reshape(b * heads, n, width // heads)


def sub_quadratic(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """ComfyUI's sub-quadratic kernel for one chunk of queries: baddbmm with the scale, softmax, bmm."""
    b, n, width = q.shape
    d = width // heads
    scores = torch.baddbmm(torch.empty(1, 1, 1), heads_of(q, heads), heads_of(k, heads).transpose(1, 2).contiguous(),
                           alpha=d ** -0.5, beta=0)
    out = torch.bmm(scores.softmax(dim=-1), heads_of(v, heads))
    return out.reshape(b, heads, n, d).permute(0, 2, 1, 3).reshape(b, n, width)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_wan_attention_is_comfyuis_cpu_kernel(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    attn = Attention(32, 2, 1e-6).eval()
    x, context = torch.randn(2, 24, 32, generator=gen), torch.randn(2, 7, 32, generator=gen)
    with torch.no_grad():
        for source in (None, context):  # self- and cross-attention
            kv = x if source is None else source
            q, k, v = attn.norm_q(attn.q(x)), attn.norm_k(attn.k(kv)), attn.v(kv)
            expected = attn.o(sub_quadratic(q, k, v, 2))
            assert torch.equal(attn(x, source), expected)


def test_animatediff_temporal_attention_is_comfyuis_cpu_kernel(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    attn = TemporalAttention(32, 4, 24).eval()
    x = torch.randn(6, 16, 32, generator=gen)
    with torch.no_grad():
        y = attn.pos_encoder(x)
        expected = attn.to_out[0](sub_quadratic(attn.to_q(y), attn.to_k(y), attn.to_v(y), 4))
        assert torch.equal(attn(x), expected)


def test_wan_vae_attention_is_comfyuis_split_kernel(gen: torch.Generator) -> None:
    torch.manual_seed(0)
    block = AttentionBlock(8).eval()
    x = torch.randn(1, 8, 2, 4, 4, generator=gen)
    with torch.no_grad():
        y = block.norm(x.permute(0, 2, 1, 3, 4).reshape(2, 8, 4, 4))
        q, k, v = (t.reshape(2, 8, 16) for t in block.to_qkv(y).chunk(3, dim=1))
        probs = (torch.bmm(q.permute(0, 2, 1), k) * 8 ** -0.5).softmax(dim=2).permute(0, 2, 1)
        attended = block.proj(torch.bmm(v, probs).reshape(2, 8, 4, 4))
        expected = x + attended.view(1, 2, 8, 4, 4).permute(0, 2, 1, 3, 4)
        assert torch.equal(block(x), expected)


def test_the_wan_estimate_counts_the_cpu_kernels_score_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    model = WanModel(TINY_DIT)
    shape, tokens = (2, 16, 5, 64, 64), 5 * 32 * 32  # 5,120 video tokens: two chunks of queries
    cpu = model.activation_bytes(shape, torch.float32, 512, "cpu")
    monkeypatch.setenv("HEARTH_CPU_ATTENTION", "sdpa")
    fused = model.activation_bytes(shape, torch.float32, 512, "cpu")
    # A chunk of 4,096 queries against every token, per head and batch item, and its softmax, in float32.
    assert cpu - fused == 2 * (2 * TINY_DIT.num_heads) * 4096 * tokens * 4
    monkeypatch.delenv("HEARTH_CPU_ATTENTION")
    assert model.activation_bytes(shape, torch.float32, 512, "meta") == fused  # fused off the CPU
