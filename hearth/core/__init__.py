"""Hearth core: plugin manager, hook specs, node contract and shared types."""
