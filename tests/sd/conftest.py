"""Fixtures for the Stable Diffusion plugin tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    """The suite's budget is set for two cores; keep torch from oversubscribing them."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))
    yield
    torch.set_num_threads(before)
