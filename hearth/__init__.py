"""Hearth: run diffusion-model node graphs from a minimal, plugin-based core, and share the nodes that make them.

Every Hearth import package lives under this one name (``hearth.core``, ``hearth.cli``, ``hearth.registry`` ...),
so no other distribution's ``core`` or ``cli`` module can shadow it.
"""

import os

# Large CPU tensors in transparent huge pages. A diffusion model on a CPU holds its weights in float32 (the dtype
# policy), and each UNet call reads all of them: with 2 MB pages it spends far less time on TLB misses, and the floats
# are the same. SD1.5's full-size UNet at 64x64 on the 2-core reference machine: 0.95 s -> 0.51 s per call. PyTorch's
# CPU allocator reads this variable once, at its first allocation, so it is set here, before anything of Hearth
# imports torch; a value the user set wins, and "0" turns it off. (Linux only; where THP is "never" it does nothing.)
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
