"""Token mode with ComfyUI's official frontend in headless Chromium: the sign-in page, signing in, the app loading,
and a restarted browser (persistent cookies kept, session ones dropped) still signed in. Against the real
``comfy serve --token``; the page's requests and console are judged as in test_frontend_browser.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from frontend_session import BOOT_TIMEOUT, PageRecord, assert_clean, launch, open_editor, playwright_or_skip
from hearth_server import HearthServer

from hearth.web.signin import TOKEN_COOKIE

TOKEN = "browser-sign-in-token"
# A first visit opens the template browser, whose thumbnails are in the media bundles the tests leave out.
TEMPLATE_MEDIA = re.compile(r"^/templates/(logo/[\w.-]+|[\w.-]+-\d+)\.(webp|png|jpe?g|gif|svg|mp4|webm|mp3)$")


@pytest.fixture(scope="module")
def playwright_api() -> Iterator[Any]:
    with playwright_or_skip().sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("frontend-token") / "data", "--token", TOKEN,
                          "--session-days", "3").start()
    yield server
    server.stop()


def test_token_mode_signs_in_and_stays_signed_in_after_a_browser_restart(playwright_api: Any,
                                                                         guarded: HearthServer) -> None:
    browser = launch(playwright_api)
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    record = PageRecord(guarded.base).attach(page)
    # Not the app's blank splash or a JSON 401: a page that asks for the token (a 401 itself, as API calls get).
    asked = page.goto(f"{guarded.base}/")
    assert asked is not None and asked.status == 401 and "Sign in" in page.title()
    assert [o.status for o in record.requests] == [401]
    record.allowed.append(record.requests[0])
    token_field = page.get_by_label("Token")
    token_field.fill(TOKEN)
    token_field.press("Enter")
    page.get_by_test_id("queue-button").wait_for(timeout=BOOT_TIMEOUT)
    page.wait_for_load_state("networkidle")
    assert page.url == f"{guarded.base}/"  # back where it was asked for, the token in no address
    assert_clean(record, also=TEMPLATE_MEDIA)
    (cookie,) = [c for c in ctx.cookies() if c["name"] == TOKEN_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
    assert cookie["expires"] > time.time() + 2.9 * 86400  # --session-days 3: it outlives the browser session
    # A restarted browser keeps persistent cookies and drops session ones: a new browser process gets just those.
    kept = {"cookies": [c for c in ctx.storage_state()["cookies"] if c["expires"] > 0], "origins": []}
    browser.close()
    restarted = launch(playwright_api)
    try:
        ctx, page, record = open_editor(restarted, guarded.base, storage_state=kept)
        page.wait_for_load_state("networkidle")
        assert page.url == f"{guarded.base}/"
        assert_clean(record)
    finally:
        restarted.close()
