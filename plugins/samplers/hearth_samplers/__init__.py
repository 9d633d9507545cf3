"""Hearth's samplers pack: samplers, noise schedules, guidance and the sampling nodes."""

__version__ = "0.1.0"
