"""ComfyUI's official frontend (comfyui-frontend-package, a test dependency) against the real ``comfy serve``, in
headless Chromium: what a new user does first, with every request and console message of the page recorded.

Needs Debian's ``chromium`` and the ``playwright`` package (Playwright drives that binary and never downloads a
browser of its own). A failing request or console error fails a test unless frontend_session.py or the test names it.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from frontend_session import assert_clean, launch, open_editor, playwright_or_skip
from frontend_workflows import SAVE_PREFIX, SD1_CHECKPOINT, sd1_txt2img
from hearth_server import LAUNCH, REPO, HearthServer

# The template browser's thumbnails and provider logos live in the templates' media bundles (~500 MB in six
# packages), which the tests leave out: those files are 404s, and nothing else under /templates/ may be.
MODEL_TITLE = "Tiny Fox"
IMPORTED = "fox-photo.png"
ORANGE_PNG = ("iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGUlEQVR4nGN8lifCQApgIkn1qIZRDUNKAwCAzgGIfz"
              "X5vgAAAABJRU5ErkJggg==")  # 16x16, orange
TEMPLATE_MEDIA = re.compile(r"^/templates/(logo/[\w.-]+|[\w.-]+-\d+)\.(webp|png|jpe?g|gif|svg|mp4|webm|mp3)$")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_or_skip().sync_playwright() as playwright:
        instance = launch(playwright)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """A fresh ``comfy serve`` (no settings yet: a first visit) with the tiny SD1 checkpoint in its models folder."""
    root = tmp_path_factory.mktemp("frontend")
    models = root / "models"
    made = subprocess.run([sys.executable, "-c", LAUNCH, "models", "make-tiny", "sd1", "--models-dir", str(models)],
                          cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert made.returncode == 0, made.stderr
    checkpoint = models / "checkpoints" / SD1_CHECKPOINT
    with_metadata(checkpoint, {"modelspec.title": MODEL_TITLE, "modelspec.author": "Hearth's tests"})
    # A preview image beside the model, as ComfyUI users keep them (NAME.png): the model library shows it.
    checkpoint.with_suffix(".png").write_bytes(base64.b64decode(ORANGE_PNG))
    # An image the user put in the input folder: Media Assets' "Imported" tab lists it (/internal/files/input).
    (root / "data" / "input").mkdir(parents=True)
    (root / "data" / "input" / IMPORTED).write_bytes(base64.b64decode(ORANGE_PNG))
    server = HearthServer(root / "data", "--models-dir", str(models)).start()
    yield server
    server.stop()


def returning_user(server: HearthServer, returning: bool = True) -> None:
    """A first visit (the frontend opens its template browser by itself) or a returning user's (it does not)."""
    with server.http() as client:
        assert client.post("/api/settings", json={"Comfy.TutorialCompleted": returning}).status_code == 200


def with_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Give a safetensors file a ``__metadata__`` header (the file: 8-byte header length, JSON header, tensors)."""
    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    header["__metadata__"] = metadata
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + size:])


def core_template_title(name: str) -> str:
    index = resources.files("comfyui_workflow_templates_json") / "templates" / "index.json"
    for category in json.loads(index.read_text()):
        for template in category["templates"]:
            if template["name"] == name:
                return template["title"]
    raise AssertionError(f"{name} is not in the installed templates' index.json")


def test_a_first_visit_loads_the_editor_and_the_template_browser(browser: Any, studio: HearthServer) -> None:
    returning_user(studio, False)
    ctx, page, record = open_editor(browser, studio.base)
    # A first visit opens the template browser by itself: the packaged templates are listed, not "No templates".
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("All Templates").click()
    dialog.get_by_placeholder(re.compile("Search")).fill("Z-Image-Turbo")
    dialog.get_by_text(core_template_title("image_z_image_turbo"), exact=True).first.wait_for(timeout=10_000)
    page.wait_for_load_state("networkidle")
    assert record.answered("/templates/index.json") and record.answered("/api/object_info")
    assert_clean(record, also=TEMPLATE_MEDIA)
    ctx.close()


def test_an_sd1_workflow_runs_and_shows_its_image_job_and_asset(browser: Any, studio: HearthServer,
                                                                 tmp_path: Path) -> None:
    workflow = tmp_path / "tiny-sd1.json"
    workflow.write_text(json.dumps(sd1_txt2img()))
    returning_user(studio)
    ctx, page, record = open_editor(browser, studio.base)
    page.set_input_files("#comfy-file-input", str(workflow))
    page.get_by_text("tiny-sd1", exact=True).first.wait_for()  # the workflow's tab
    folder, prefix = SAVE_PREFIX.split("/")
    with page.expect_response(lambda r: "/api/view?" in r.url and f"filename={prefix}_" in r.url,
                              timeout=60_000) as shown:
        page.get_by_test_id("queue-button").click()
    assert shown.value.status == 200 and f"subfolder={folder}" in shown.value.url
    name = re.search(r"filename=([^&]+)", shown.value.url)[1]
    # The image in the Save Image node (drawn on the canvas: read the node's loaded image).
    # (the tiny VAE: 64 px -> 8 latent -> 16 px)
    page.wait_for_function("""() => {
        const images = window.app.graph.getNodeById(7).imgs || [];
        return images.length === 1 && images[0].complete && images[0].naturalWidth === 16;
    }""", timeout=10_000)
    # The job in the Job Queue panel, and its image among the Media Assets.
    page.get_by_test_id("queue-overlay-toggle").click()
    page.locator(f'span[title="{name}"]').first.wait_for(timeout=10_000)
    page.get_by_test_id("assets-tab-button").click()
    asset = page.locator(f'[data-asset-id] img[alt="{name}"]').first
    asset.wait_for(timeout=10_000)
    page.wait_for_function("img => img.complete && img.naturalWidth === 16", arg=asset.element_handle())
    page.get_by_text("Imported", exact=True).click()
    imported = page.locator(f'[data-asset-id] img[alt="{IMPORTED}"]').first
    imported.wait_for(timeout=10_000)
    page.wait_for_function("img => img.complete && img.naturalWidth === 16", arg=imported.element_handle())
    # The total progress bar (in the tab title, "[TOTAL%][NODE%] NodeType" while running) counts cached and executed
    # nodes: on a re-run with a new seed, 4 of the 7 come from the cache, and the total shows them as the sampler runs.
    rerun = tmp_path / "tiny-sd1-seed-8.json"
    rerun.write_text(json.dumps(sd1_txt2img(seed=8)))
    page.set_input_files("#comfy-file-input", str(rerun))
    page.get_by_text("tiny-sd1-seed-8", exact=True).first.wait_for()
    with page.expect_response(lambda r: "/api/view?" in r.url and f"filename={prefix}_" in r.url, timeout=60_000):
        page.get_by_test_id("queue-button").click()
    assert any(re.fullmatch(r"\[57%\]\[\d+%\] KSampler", title) for title in record.titles(page)), \
        "\n".join(record.titles(page))
    assert_clean(record)
    ctx.close()


def test_the_model_library_and_a_nodes_docs(browser: Any, studio: HearthServer, tmp_path: Path) -> None:
    workflow = tmp_path / "docs.json"
    workflow.write_text(json.dumps(sd1_txt2img()))
    returning_user(studio)
    ctx, page, record = open_editor(browser, studio.base)
    page.set_input_files("#comfy-file-input", str(workflow))
    page.get_by_text("docs", exact=True).first.wait_for()
    # The model library: the checkpoint under its safetensors title (/view_metadata), with its preview image.
    page.get_by_test_id("model-library-tab-button").click()
    preview = f"/api/experiment/models/preview/checkpoints/0/{Path(SD1_CHECKPOINT).stem}.webp"
    with page.expect_response(lambda r: r.url.startswith(studio.base + preview)) as shown:
        page.get_by_text("checkpoints", exact=True).first.click()
    assert shown.value.status == 200 and shown.value.headers["content-type"] == "image/webp"
    icon = page.get_by_test_id("tree-node-icon-image").first
    assert preview in (icon.get_attribute("style") or "")
    page.get_by_text(MODEL_TITLE, exact=True).first.hover()
    page.get_by_text("Hearth's tests").first.wait_for(timeout=10_000)  # the hover card's author
    # The node library files ComfyUI's nodes under "Comfy Nodes" (from /object_info's python_module), not under
    # "Extensions" as it did when Hearth named its own modules there.
    page.get_by_test_id("node-library-tab-button").click()
    page.get_by_placeholder(re.compile("Search")).first.fill("KSampler")
    page.get_by_text(re.compile("^comfy nodes$", re.IGNORECASE)).first.wait_for(timeout=10_000)
    assert page.get_by_text(re.compile("^extensions$", re.IGNORECASE)).count() == 0
    assert page.evaluate("() => window.app.graph.getNodeById(5).constructor.nodeData.nodeSource.type") == "core"
    # A node's documentation (comfyui-embedded-docs) in the properties panel's Info tab.
    page.get_by_test_id("node-library-tab-button").click()  # closes the library
    title = page.evaluate("""() => {
        const node = window.app.graph.getNodeById(5), box = window.app.canvas.canvas.getBoundingClientRect();
        const [x, y] = window.app.canvas.ds.convertOffsetToCanvas([node.pos[0] + 60, node.pos[1] - 15]);
        return [box.left + x, box.top + y];
    }""")
    page.mouse.click(*title)
    page.get_by_label("Toggle properties panel").click()
    page.get_by_text("Info", exact=True).click()
    page.get_by_text(re.compile("^The KSampler works like this")).first.wait_for(timeout=10_000)
    assert record.answered("/docs/KSampler/en.md")
    assert_clean(record)
    ctx.close()
