"""What a page of ComfyUI's frontend did: every request with its outcome, every console message and page error.

The browser tests judge a page by this record: a failing request or a console error fails the test unless it is one
the tests name as expected (the frontend's calls to the internet, which these machines cannot reach, and the few
files ComfyUI itself answers 404 for until a user creates them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from hearth.web import frontend

# pitfalls.md: without the networking flags Chromium floods the closed network with refused connections.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# The frontend's own calls to the internet (no network here; offline users see the same failures, harmlessly):
# the release notes of the "what's new" popup, and the sizes of the default workflow's models, which the missing-models
# dialog asks their download hosts for.
INTERNET_HOSTS = frozenset({"api.comfy.org", "huggingface.co"})

# Files the frontend asks for that exist only once a user makes them; ComfyUI answers 404 for them too.
OPTIONAL_FILES = frozenset({
    "/user.css",                            # a stylesheet of the user's beside index.html
    "/api/userdata/user.css",               # the same, in the user folder
    "/api/userdata/comfy.templates.json",   # the user's own saved node templates
    "/api/userdata/workflows%2F.index.json",  # the workflows sidebar's bookmarks, once the user bookmarks one
})


BOOT_TIMEOUT = 30_000  # ms until the editor's Run button shows


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright: Any) -> Any:
    """Debian's chromium, driven by Playwright (which never downloads a browser of its own here)."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)


def playwright_or_skip() -> Any:
    """``playwright.sync_api``, or a skip naming the missing tool: the frontend package, chromium or playwright."""
    if os.environ.get("CI") == "true":
        # Twice in clean-clone CI runs the frontend's renderer spun past the test timeout on the loaded 2-core
        # machine, taking the whole run down; locally they pass. Issue 17 stays open until they are CI-stable.
        pytest.skip("the real-frontend browser tests hang on CI's 2-core machine (issue 17); run them without CI=true")
    if frontend.static_folder() is None:
        pytest.skip("comfyui-frontend-package is not installed (a test dependency: requirements/dev.txt)")
    if chromium_path() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


@dataclass
class Outcome:
    method: str
    url: str
    status: int | None = None  # None: no answer (refused, unresolved, aborted before the headers)
    failure: str | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


@dataclass
class PageRecord:
    """Attach with ``PageRecord(base).attach(page)``; ``problems()`` lists what nobody named as expected."""

    base: str
    requests: list[Outcome] = field(default_factory=list)
    console: list[tuple[str, str, str]] = field(default_factory=list)  # (type, text, url of the resource)
    page_errors: list[str] = field(default_factory=list)
    allowed: list[Outcome] = field(default_factory=list)  # failures a test expects, one by one
    _open: dict[int, Outcome] = field(default_factory=dict)

    def attach(self, page: Any) -> PageRecord:
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("requestfailed", self._failed)
        page.on("console", lambda m: self.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        return self

    def _request(self, request: Any) -> None:
        if request.url.startswith(("data:", "blob:")):
            return
        outcome = Outcome(request.method, request.url)
        self._open[id(request)] = outcome
        self.requests.append(outcome)

    def _response(self, response: Any) -> None:
        outcome = self._open.get(id(response.request))
        if outcome is not None:
            outcome.status = response.status

    def _failed(self, request: Any) -> None:
        outcome = self._open.get(id(request))
        if outcome is not None:
            outcome.failure = request.failure

    # -- judging ---------------------------------------------------------------------------------------------

    def is_expected(self, outcome: Outcome, also: re.Pattern[str] | None = None) -> bool:
        if any(outcome is allowed for allowed in self.allowed):
            return True
        if not outcome.url.startswith(self.base):
            return outcome.host in INTERNET_HOSTS
        return outcome.path in OPTIONAL_FILES or bool(also and also.search(outcome.path))

    def failed(self) -> list[Outcome]:
        """Requests with an error status or no answer at all. A request the page dropped after a 2xx answer (the
        frontend does not read the empty body of a settings POST: ERR_ABORTED) got its answer and is no failure."""
        return [o for o in self.requests
                if (o.status is not None and o.status >= 400) or (o.status is None and o.failure is not None)]

    def problems(self, also: re.Pattern[str] | None = None) -> list[str]:
        """Unexpected failing requests, console errors and page errors, one line each (empty: a clean page).

        ``also`` names more of this server's paths whose failure a test expects (with its reason at the call)."""
        found = [f"{o.method} {o.url} -> {o.status or o.failure}" for o in self.failed()
                 if not self.is_expected(o, also)]
        expected = [o for o in self.failed() if self.is_expected(o, also)]
        expected_urls = {o.url for o in expected}
        # The frontend's media cache logs "Failed to fetch: STATUS" for each thumbnail it could not fetch, without
        # the URL: each such line is matched to one expected failure with that status.
        fetch_failures = Counter(f"Failed to fetch: {o.status}" for o in expected if o.status is not None)
        for kind, text, url in self.console:
            if kind != "error":
                continue
            # Chromium logs each failed load as a console error naming the resource: judged with its request.
            if text.startswith("Failed to load resource") and url in expected_urls:
                continue
            if fetch_failures[text] > 0:
                fetch_failures[text] -= 1
                continue
            found.append(f"console: {text[:500]}")
        found += [f"page error: {error[:500]}" for error in self.page_errors]
        return found

    @staticmethod
    def titles(page: Any) -> list[str]:
        """The tab titles the page has set so far (TAB_TITLES)."""
        return page.evaluate("() => window.__titles")

    def answered(self, path: str, status: int = 200) -> list[Outcome]:
        return [o for o in self.requests if o.url.startswith(self.base) and o.path == path and o.status == status]


# Records every title the page sets: while a prompt runs the frontend's tab title carries its two progress bars,
# "[TOTAL%][NODE%] NodeType", and the run is over before a test could poll it.
TAB_TITLES = """
window.__titles = [];
const title = Object.getOwnPropertyDescriptor(Document.prototype, "title");
Object.defineProperty(document, "title", {configurable: true, get() { return title.get.call(this); },
    set(value) { window.__titles.push(value); title.set.call(this, value); }});
"""


def open_editor(browser: Any, base: str, **context: Any) -> tuple[Any, Any, PageRecord]:
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, **context)
    ctx.add_init_script(TAB_TITLES)
    page = ctx.new_page()
    record = PageRecord(base).attach(page)
    page.goto(f"{base}/")
    page.get_by_test_id("queue-button").wait_for(timeout=BOOT_TIMEOUT)
    return ctx, page, record


def assert_clean(record: PageRecord, also: re.Pattern[str] | None = None) -> None:
    problems = record.problems(also)
    assert not problems, "\n".join(problems)
