"""Token mode with ComfyUI's official frontend in headless Chromium: the sign-in page, signing in, the app loading,
and a restarted browser (persistent cookies kept, session ones dropped) still signed in. Against the real
``comfy serve --token``; the page's requests and console are judged as in test_frontend_browser.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from frontend_session import Chromium, assert_clean, playwright_or_skip, template_media, wait_for_editor
from hearth_server import HearthServer

from hearth.web.signin import TOKEN_COOKIE

TOKEN = "browser-sign-in-token"
pytestmark = pytest.mark.timeout(420)  # Chromium.run's deadline bounds the browser work (test_frontend_browser.py)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    instance = Chromium(playwright_or_skip()).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    server = HearthServer(tmp_path_factory.mktemp("frontend-token") / "data", "--token", TOKEN,
                          "--session-days", "3").start()
    yield server
    server.stop()


def test_token_mode_signs_in_and_stays_signed_in_after_a_browser_restart(chromium: Chromium,
                                                                         guarded: HearthServer) -> None:
    with chromium.run() as run:
        browser = run.launch()
        page, record = run.new_page(guarded.base, browser)
        # Not the app's blank splash or a JSON 401: a page that asks for the token (a 401 itself, as API calls get).
        asked = page.goto(f"{guarded.base}/")
        assert asked is not None and asked.status == 401 and "Sign in" in page.title()
        assert [o.status for o in record.requests] == [401]
        record.allowed.append(record.requests[0])
        token_field = page.get_by_label("Token")
        token_field.fill(TOKEN)
        token_field.press("Enter")
        wait_for_editor(page)
        page.wait_for_load_state("networkidle")
        assert page.url == f"{guarded.base}/"  # back where it was asked for, the token in no address
        # A first visit opens the template browser, whose thumbnails are in the media bundles the tests leave out.
        assert_clean(record, also=template_media())
        ctx = page.context
        (cookie,) = [c for c in ctx.cookies() if c["name"] == TOKEN_COOKIE]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and TOKEN not in cookie["value"]
        assert cookie["expires"] > time.time() + 2.9 * 86400  # --session-days 3: it outlives the browser session
        # A restarted browser keeps persistent cookies and drops session ones: a new browser process gets just those.
        kept = {"cookies": [c for c in ctx.storage_state()["cookies"] if c["expires"] > 0], "origins": []}
        browser.close()
        page, record = run.open_editor(guarded.base, run.launch(), storage_state=kept)
        page.wait_for_load_state("networkidle")
        assert page.url == f"{guarded.base}/"
        assert_clean(record)
