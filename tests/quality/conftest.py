"""Fixtures of the quality checks: the judge (trained once per session) and the trained model (once per module).

Both run with one torch thread: the work is many small batches, where a second thread buys little on a quiet
2-core machine and costs 5-25x on a busy one (threads spin while another process holds the core).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hearth_sd.trained.judge import Judge, train_judge

from .harness import FIGURES, Pipeline, torch_threads

THREADS = 1
MODELS_ENV = "HEARTH_QUALITY_MODELS_DIR"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("quality figures (tests/quality)")
        for key, line in FIGURES.items():
            terminalreporter.write_line(f"{key:<40} {line}")


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    with torch_threads(THREADS):
        yield


@pytest.fixture(scope="session")
def judge() -> Judge:
    with torch_threads(THREADS):
        return train_judge()


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    """The shipped trained checkpoint and its LoRA, loaded through CheckpointLoaderSimple.

    ``HEARTH_QUALITY_MODELS_DIR`` points the checks at another models folder holding files of the same names
    (a training run's ``--out``), to judge a candidate before shipping it.
    """
    from hearth_sd.trained.train import CHECKPOINT_NAME, LORA_NAME, SHIPPED_DIR

    with torch_threads(THREADS):
        pipe = Pipeline.open(Path(os.environ.get(MODELS_ENV) or SHIPPED_DIR), CHECKPOINT_NAME, LORA_NAME)
        try:
            yield pipe
        finally:
            pipe.close()
