"""Hearth: run diffusion-model node graphs from a minimal, plugin-based core, and share the nodes that make them.

Every Hearth import package lives under this one name (``hearth.core``, ``hearth.cli``, ``hearth.registry`` ...),
so no other distribution's ``core`` or ``cli`` module can shadow it.
"""
