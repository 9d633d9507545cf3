"""Driving ComfyUI's frontend in Chromium for the browser tests, and judging what a page of it did.

``Chromium`` runs one browser for a test module and gives each test a hard deadline: when a test runs past it the
browser's process group is killed (then the Playwright driver's, if the test is still stuck), so the test fails
with the page's console and requests so far, and never holds the suite. pytest-timeout alone is not enough: it
fires once, after 300 s that include the module's fixtures, interrupts only the Python side and leaves the browser
running into the teardown and the next tests; and ``page.evaluate`` or ``page.mouse`` have no timeout of their own.

``PageRecord`` keeps every request with its outcome, every console message and page error: a failing request or a
console error fails the test unless it is one the tests name as expected (the frontend's calls to the internet,
which these machines cannot reach, and the few files ComfyUI itself answers 404 for until a user creates them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import greenlet
import pytest

from hearth.web import frontend

# pitfalls.md: without the networking flags Chromium floods the closed network with refused connections. Every
# host but loopback resolves to "not found" at once: the frontend's internet calls fail in a millisecond instead of
# waiting on a DNS server these machines cannot reach. Shared memory in /tmp: a container's /dev/shm may be 64 MB.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

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


TESTS = str(Path(__file__).resolve().parents[1])

# Template thumbnails with a second image: the card shows both (a before/after slider, or a fade on hover).
TWO_THUMBNAILS = frozenset({"compareSlider", "hoverDissolve"})


def template_media() -> frozenset[str]:
    """The exact paths of the template browser's images that live in the templates' media bundles (~500 MB in six
    packages, left out of the test dependencies): every installed template's thumbnails, ``NAME-1.EXT`` and for two-
    image cards ``NAME-2.EXT``, and the providers' logos of index_logo.json. These may 404; nothing else may."""
    folder = resources.files("comfyui_workflow_templates_json") / "templates"
    paths = set()
    for category in json.loads((folder / "index.json").read_text()):
        for template in category["templates"]:
            name, ext = template["name"], template["mediaSubtype"]
            paths.add(f"/templates/{name}-1.{ext}")
            if template.get("thumbnailVariant") in TWO_THUMBNAILS:
                paths.add(f"/templates/{name}-2.{ext}")
    paths.update(f"/templates/{logo}" for logo in json.loads((folder / "index_logo.json").read_text()).values())
    return frozenset(paths)


# ms until the editor's Run button shows: a few seconds on an idle 2-core machine, over 30 s seen under CI-like load.
BOOT_TIMEOUT = 90_000
# ms for any other single wait of a test (Playwright's default is 30 s): generous, the test's deadline bounds all.
WAIT_TIMEOUT = 45_000
# s a whole test may use the browser before its process group is killed (pytest-timeout's 300 s include fixtures).
TEST_DEADLINE = 180.0
# s after that before the Playwright driver is killed too, if the test is still waiting on it.
DRIVER_GRACE = 20.0


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright: Any) -> Any:
    """Debian's chromium, driven by Playwright (which never downloads a browser of its own here)."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)


def playwright_or_skip() -> Any:
    """``playwright.sync_api``, or a skip naming the missing tool: the frontend package, chromium or playwright."""
    if frontend.static_folder() is None:
        pytest.skip("comfyui-frontend-package is not installed (a test dependency: requirements/dev.txt)")
    if chromium_path() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux /proc), oldest first."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _kill_group(pgid: int | None) -> None:
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Chromium:
    """One Playwright driver and Chromium for a test module; ``run(...)`` bounds a test's use of them.

    Playwright starts the driver as a child of this process and Chromium as the leader of a process group of its
    own (its renderers in the group), so the deadline can kill exactly these processes and nothing of pytest's.
    """

    def __init__(self, sync_api: Any) -> None:
        self._sync_api = sync_api
        self._manager: Any = None
        self.playwright: Any = None
        self.browser: Any = None
        self.driver_pid: int | None = None
        self.browser_pid: int | None = None

    def start(self) -> Chromium:
        before = set(_children(os.getpid()))
        self._manager = self._sync_api.sync_playwright()
        self.playwright = self._manager.start()
        started = [pid for pid in _children(os.getpid()) if pid not in before]
        self.driver_pid = started[-1] if started else None
        return self.relaunch()

    def relaunch(self) -> Chromium:
        """A new browser (the first, or one after a deadline killed the last); a new driver too if that died."""
        if self.driver_pid is not None and not self._alive(self.driver_pid):
            self._manager.__exit__(None, None, None)
            return self.start()
        known = set(_children(self.driver_pid)) if self.driver_pid else set()
        self.browser = self.launch()
        started = [pid for pid in _children(self.driver_pid) if pid not in known] if self.driver_pid else []
        self.browser_pid = started[0] if started else None
        return self

    def launch(self) -> Any:
        """Another browser process on the same driver (a restarted browser); closed by the test or by ``stop``."""
        return launch(self.playwright)

    def stop(self) -> None:
        try:
            if self.browser is not None and self.browser.is_connected():
                self.browser.close()
        finally:
            self._manager.__exit__(None, None, None)

    @staticmethod
    def _alive(pid: int | None) -> bool:
        """Running (a killed child stays in /proc as a zombie until it is reaped)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, TypeError):
            return False
        return stat[stat.rindex(")") + 2] != "Z"

    @contextmanager
    def run(self, deadline: float = TEST_DEADLINE) -> Iterator[Run]:
        """Bound one test: past ``deadline`` s Chromium's process group is killed, ``DRIVER_GRACE`` s later the
        driver; any failure inside is raised again with what the pages of the test did (``Run.open_editor``)."""
        if not self.browser.is_connected():
            self.relaunch()
        run = Run(self)
        main = threading.get_ident()
        # While a sync call waits, the test's code is suspended in this greenlet and the thread runs the event loop
        # in Playwright's: the test's frames are this one's, not the thread's.
        test_code = greenlet.getcurrent()

        def expire() -> None:
            frame = test_code.gr_frame or sys._current_frames().get(main)
            ours = [f for f in traceback.extract_stack(frame) if f.filename.startswith(TESTS)]
            run.stuck_at = "".join(traceback.format_list(ours[-3:])) or "(no frame of the tests' visible)\n"
            run.expired = time.monotonic()
            # Every browser the driver started leads a process group of its own: the module's, and a test's others.
            for pid in _children(self.driver_pid) if self.driver_pid else []:
                _kill_group(pid)

        def last_resort() -> None:
            if self._alive(self.driver_pid):
                try:
                    os.kill(self.driver_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        timers = [threading.Timer(deadline, expire), threading.Timer(deadline + DRIVER_GRACE, last_resort)]
        for timer in timers:
            timer.daemon = True
            timer.start()
        failure: BaseException | None = None
        try:
            yield run
        except BaseException as exc:
            failure = exc
        finally:
            # A failed test's page must not stay open: a template browser left showing keeps Chromium at ~0.7 of
            # a core (measured idle: 6.7 CPU s in 10 s, the editor alone 0.9) and starves every test after it.
            closing = run.close(quietly=failure is not None)
            for timer in timers:
                timer.cancel()
        if failure is not None and run.expired is None and not isinstance(failure, Exception):
            raise failure
        if failure is not None or run.expired is not None:
            raise AssertionError(run.report(failure, deadline)) from failure
        if closing is not None:
            raise closing


class Run:
    """A test's use of the browser (``Chromium.run``): its contexts and what their pages did."""

    def __init__(self, chromium: Chromium) -> None:
        self.chromium = chromium
        self.contexts: list[Any] = []
        self.records: list[PageRecord] = []
        self.browsers: list[Any] = []
        self.expired: float | None = None
        self.stuck_at = ""

    def new_page(self, base: str, browser: Any = None, **context: Any) -> tuple[Any, PageRecord]:
        """A page in a new context of ``browser`` (the module's by default), recorded; closed when the test ends."""
        ctx = (browser or self.chromium.browser).new_context(viewport={"width": 1600, "height": 1000}, **context)
        self.contexts.append(ctx)
        ctx.set_default_timeout(WAIT_TIMEOUT)
        ctx.set_default_navigation_timeout(BOOT_TIMEOUT)
        ctx.add_init_script(TAB_TITLES)
        page = ctx.new_page()
        record = PageRecord(base).attach(page)
        self.records.append(record)
        return page, record

    def open_editor(self, base: str, browser: Any = None, **context: Any) -> tuple[Any, PageRecord]:
        """``new_page`` with the editor loaded (its Run button shown)."""
        page, record = self.new_page(base, browser, **context)
        page.goto(f"{base}/")
        wait_for_editor(page)
        return page, record

    def launch(self) -> Any:
        """Another browser process (a restarted browser): killed with the module's at the deadline."""
        browser = self.chromium.launch()
        self.browsers.append(browser)
        return browser

    def close(self, quietly: bool) -> Exception | None:
        """Close the test's contexts and extra browsers; the first error, unless ``quietly`` (the test failed)."""
        first: Exception | None = None
        # A context goes with its browser: one the test closed (a restarted browser) has nothing left to close.
        open_contexts = [ctx for ctx in self.contexts if ctx.browser is None or ctx.browser.is_connected()]
        for closable in [*open_contexts, *self.browsers]:
            try:
                closable.close()
            except Exception as exc:
                first = first or exc
        return None if quietly else first

    def report(self, exc: BaseException | None, deadline: float) -> str:
        lines = []
        if self.expired is not None:
            lines.append(f"the test used the browser past its {deadline:.0f} s deadline: Chromium was killed; "
                         f"the test was waiting at\n{self.stuck_at}")
        if exc is not None:
            lines.append(f"{type(exc).__name__}: {str(exc)[:3000]}")
        for number, record in enumerate(self.records, 1):
            lines.append(f"--- page {number}: what it did ---\n{record.transcript()}")
        return "\n".join(lines)


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

    def is_expected(self, outcome: Outcome, also: Collection[str] = ()) -> bool:
        if any(outcome is allowed for allowed in self.allowed):
            return True
        if not outcome.url.startswith(self.base):
            return outcome.host in INTERNET_HOSTS
        return outcome.path in OPTIONAL_FILES or outcome.path in also

    def failed(self) -> list[Outcome]:
        """Requests with an error status or no answer at all. A request the page dropped after a 2xx answer (the
        frontend does not read the empty body of a settings POST: ERR_ABORTED) got its answer and is no failure."""
        return [o for o in self.requests
                if (o.status is not None and o.status >= 400) or (o.status is None and o.failure is not None)]

    def problems(self, also: Collection[str] = ()) -> list[str]:
        """Unexpected failing requests, console errors and page errors, one line each (empty: a clean page).

        ``also`` names more of this server's paths (exactly) whose failure a test expects, with its reason."""
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

    def transcript(self, requests: int = 80, console: int = 40) -> str:
        """The last requests (with their outcome), console messages and page errors, one a line."""
        lines = [f"{o.method} {o.url} -> {o.status or o.failure or 'no answer yet'}" for o in self.requests[-requests:]]
        lines += [f"console {kind}: {text[:300]}" for kind, text, _ in self.console[-console:]]
        lines += [f"page error: {error[:300]}" for error in self.page_errors]
        skipped = max(0, len(self.requests) - requests)
        return (f"({skipped} earlier requests not shown)\n" if skipped else "") + "\n".join(lines)

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


def wait_for_editor(page: Any) -> None:
    page.get_by_test_id("queue-button").wait_for(timeout=BOOT_TIMEOUT)


def assert_clean(record: PageRecord, also: Collection[str] = ()) -> None:
    problems = record.problems(also)
    assert not problems, "\n".join(problems)
