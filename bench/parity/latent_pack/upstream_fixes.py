"""ComfyUI fixes made after the version the harness runs (0.3.64) that Hearth follows, applied to that ComfyUI so
both sides are compared under the same rules. Each one patches only a ComfyUI that still has the old behaviour,
and says so on stderr.

* PR #11528 (issue #9819, "ancestral samplers are broken (on CPU)"): on the CPU, ``default_noise_sampler(x, seed)``
  seeds its generator with ``seed + 1``. With ``seed`` itself, its first draw was the initial noise again (which
  ``prepare_noise`` draws from a CPU generator seeded with ``seed``), so every ancestral and SDE-style sampler
  added the same noise twice on a CPU. A CUDA generator draws other numbers, so a GPU never had the fault.
"""

from __future__ import annotations

import sys


def follow_cpu_step_noise_fix(kds) -> bool:
    """Give ``comfy.k_diffusion.sampling`` (``kds``) the seed + 1 rule if it lacks it; True when it patched."""
    import torch

    x = torch.zeros(4)
    if getattr(kds, "_hearth_parity_patched", False) or not torch.equal(
            kds.default_noise_sampler(x, seed=0)(None, None), torch.randn(4, generator=torch.Generator().manual_seed(0))):
        return False
    original = kds.default_noise_sampler

    def default_noise_sampler(x, seed=None):
        if seed is not None and x.device.type == "cpu":
            seed = (int(seed) + 1) % 2**64
        return original(x, seed)

    kds.default_noise_sampler = default_noise_sampler  # the samplers look it up as a module global
    kds._hearth_parity_patched = True
    print("hearth parity: this ComfyUI seeds CPU step noise with the seed itself; applied PR #11528's seed + 1",
          file=sys.stderr)
    return True


def apply_all() -> None:
    """Apply every fix above to the ComfyUI that imported this pack (nothing when it is not ComfyUI)."""
    try:
        import comfy.k_diffusion.sampling as kds
    except ImportError:
        return
    follow_cpu_step_noise_fix(kds)
