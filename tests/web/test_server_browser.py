"""Hearth's UI in headless Chromium: load /hearth/, queue the builtin demo workflow file, see its output image.

Needs Debian's ``chromium`` and the ``playwright`` Python package; Playwright drives that binary and never
downloads a browser of its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from frontend_session import CHROMIUM_FLAGS, chromium_path
from hearth_server import DEMO, REPO, HearthServer


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield context
        finally:
            context.close()


def test_queue_the_demo_workflow_and_see_its_image(browser: Any, server: HearthServer) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Hearth's pages run under a strict Content-Security-Policy: a violation is a console error.
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{server.base}/hearth/")
    page.wait_for_selector("#connection[data-state='open']", timeout=15_000)
    page.wait_for_selector("#packs-body tr", timeout=15_000)  # packs table filled from /api/hearth/plugins
    before = page.locator("#history-list img.output").count()
    page.set_input_files("#workflow-file", str(DEMO))
    page.click("#queue-button")
    # Locator waits, not wait_for_function: its string predicates are eval'd, which the page's policy forbids.
    page.locator("#history-list img.output").nth(before).wait_for(timeout=30_000)
    image = page.locator("#history-list li").first.locator("img.output").first
    image.wait_for(timeout=5_000)
    deadline = time.monotonic() + 10
    while not image.evaluate("img => img.complete && img.naturalWidth > 0"):
        assert time.monotonic() < deadline, "the output image did not load"
        time.sleep(0.05)
    assert image.evaluate("img => img.naturalWidth") == 256  # 96 px + 2 * 16 px padding, scaled by 2
    assert "builtin_" in (image.get_attribute("src") or "")
    assert "queued builtin_demo_api.json" in page.locator("#run-message").inner_text()
    shot = Path(server.data.parent / "hearth-ui.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    assert errors == []
    page.close()


def test_a_ui_format_workflow_runs_too(browser: Any, server: HearthServer) -> None:
    page = browser.new_page()
    page.goto(f"{server.base}/hearth/")
    page.wait_for_selector("#connection[data-state='open']", timeout=15_000)
    page.set_input_files("#workflow-file", str(REPO / "examples" / "workflows" / "builtin_demo_ui.json"))
    page.click("#queue-button")
    page.locator("#run-message", has_text=re.compile(r"^queued")).wait_for(timeout=15_000)
    page.close()
