"""The browser tests' deadline (frontend_session.Chromium.run): a test whose page never answers is killed and fails
within its deadline, naming where it waited and what the page did, and the next test gets a working browser.

Playwright's ``page.evaluate`` has no timeout of its own, and a page whose script spins never answers it: without
the deadline this test would wait until pytest-timeout, and after that on the teardown.
"""

from __future__ import annotations

import re
import time

import pytest
from frontend_session import Chromium, playwright_or_skip
from hearth_server import free_port

SPIN = "() => { setTimeout(() => { while (true) {} }, 0); }"


def test_a_hung_page_is_killed_at_the_deadline_and_the_next_test_gets_a_new_browser() -> None:
    chromium = Chromium(playwright_or_skip()).start()
    # A page that asks for an image where nothing listens: a request the failure message must show.
    nowhere = f"http://127.0.0.1:{free_port()}"
    try:
        first_browser = chromium.browser_pid
        started = time.monotonic()
        with pytest.raises(AssertionError) as failed:
            with chromium.run(deadline=3) as run:
                page, _ = run.new_page(nowhere)
                page.set_content(f"<p>one image</p><img src='{nowhere}/fox.png'>")
                page.evaluate(SPIN)
                page.evaluate("() => document.title")  # never answered: the page's only thread spins
        took = time.monotonic() - started
        message = str(failed.value)
        assert "past its 3 s deadline: Chromium was killed" in message
        # Where the test was stuck (the evaluate, or an earlier step on a machine too loaded to get there in 3 s).
        assert re.search(r"test_frontend_browser_guard.py\", line \d+, in test_a_hung_page", message), message
        assert f"GET {nowhere}/fox.png -> net::ERR_CONNECTION_REFUSED" in message  # what the page did
        assert took < 3 + 15, f"the hung test took {took:.1f} s"
        # The next test's browser is a new one that works.
        with chromium.run(deadline=60) as run:
            page, _ = run.new_page(nowhere)
            page.set_content("<p>after</p>")
            assert page.evaluate("() => document.body.textContent") == "after"
        assert chromium.browser_pid != first_browser
    finally:
        chromium.stop()
