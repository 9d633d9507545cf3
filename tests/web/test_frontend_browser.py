"""ComfyUI's official frontend (comfyui-frontend-package, a test dependency) against the real ``comfy serve``, in
headless Chromium: what a new user does first, with every request and console message of the page recorded.

Needs Debian's ``chromium`` and the ``playwright`` package (Playwright drives that binary and never downloads a
browser of its own). A failing request or console error fails a test unless frontend_session.py or the test names it.
Each test runs under ``Chromium.run``'s deadline: one that hangs is killed and fails with what its pages did.
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

import pytest
from frontend_session import Chromium, assert_clean, playwright_or_skip, template_media, wait_for_editor
from frontend_workflows import SAVE_PREFIX, SD1_CHECKPOINT, load_image, sd1_txt2img
from hearth_server import LAUNCH, REPO, HearthServer

# Chromium.run's deadline (TEST_DEADLINE) bounds each test's browser work; this leaves room for the module's fixtures
# (the tiny checkpoint and a server start: over 100 s seen on the loaded 2-core machine) before pytest-timeout.
pytestmark = pytest.mark.timeout(420)

MODEL_TITLE = "Tiny Fox"
IMPORTED = "fox-photo.png"
ORANGE_PNG = ("iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGUlEQVR4nGN8lifCQApgIkn1qIZRDUNKAwCAzgGIfz"
              "X5vgAAAABJRU5ErkJggg==")  # 16x16, orange
SAVED = "fox in the snow"
UPLOADED = "uploaded-fox.png"
BLUE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFElEQVR4nGNkYPjPgA0wYRUdtBIAy0MBD1YkjLoAAAAASUVORK5CYII="  # 8x8, blue: not the input folder's orange 16x16


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    instance = Chromium(playwright_or_skip()).start()
    yield instance
    instance.stop()


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


def test_a_first_visit_loads_the_editor_and_the_template_browser(chromium: Chromium, studio: HearthServer) -> None:
    returning_user(studio, False)
    with chromium.run() as run:
        page, record = run.open_editor(studio.base)
        # A first visit opens the template browser by itself: the packaged templates are listed, not "No templates".
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="All Templates", exact=True).click()
        dialog.get_by_placeholder(re.compile("Search")).fill("Z-Image-Turbo")
        dialog.get_by_text(core_template_title("image_z_image_turbo"), exact=True).first.wait_for()
        page.wait_for_load_state("networkidle")
        assert record.answered("/templates/index.json") and record.answered("/api/object_info")
        # Only thumbnails (their media bundles are not installed) may fail under /templates/, each by its exact path.
        missing = {o.path for o in record.failed() if o.url.startswith(studio.base + "/templates/")}
        assert missing and missing <= template_media(), sorted(missing - template_media())
        assert_clean(record, also=template_media())


def test_an_sd1_workflow_runs_and_shows_its_image_job_and_asset(chromium: Chromium, studio: HearthServer,
                                                                 tmp_path: Path) -> None:
    workflow = tmp_path / "tiny-sd1.json"
    workflow.write_text(json.dumps(sd1_txt2img()))
    returning_user(studio)
    with chromium.run() as run:
        page, record = run.open_editor(studio.base)
        page.set_input_files("#comfy-file-input", str(workflow))
        page.get_by_text("tiny-sd1", exact=True).first.wait_for()  # the workflow's tab
        folder, prefix = SAVE_PREFIX.split("/")
        with page.expect_response(lambda r: "/api/view?" in r.url and f"filename={prefix}_" in r.url,
                                  timeout=90_000) as shown:
            page.get_by_test_id("queue-button").click()
        assert shown.value.status == 200 and f"subfolder={folder}" in shown.value.url
        name = re.search(r"filename=([^&]+)", shown.value.url)[1]
        # The image in the Save Image node (drawn on the canvas: read the node's loaded image).
        # (the tiny VAE: 64 px -> 8 latent -> 64 px)
        page.wait_for_function("""() => {
            const images = window.app.graph.getNodeById(7).imgs || [];
            return images.length === 1 && images[0].complete && images[0].naturalWidth === 64;
        }""")
        # The job in the Job Queue panel, and its image among the Media Assets.
        page.get_by_test_id("queue-overlay-toggle").click()
        page.locator(f'span[title="{name}"]').first.wait_for()
        page.get_by_test_id("assets-tab-button").click()
        asset = page.locator(f'[data-asset-id] img[alt="{name}"]').first
        asset.wait_for()
        page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=asset.element_handle())
        page.get_by_text("Imported", exact=True).click()
        imported = page.locator(f'[data-asset-id] img[alt="{IMPORTED}"]').first
        imported.wait_for()
        page.wait_for_function("img => img.complete && img.naturalWidth === 16", arg=imported.element_handle())
        # The total progress bar (in the tab title, "[TOTAL%][NODE%] NodeType" while a node reports progress,
        # "[TOTAL%] workflow" between reports) counts cached and executed nodes: on a re-run with a new seed, 4 of
        # the 7 come from the cache, and the total shows them as the sampler runs. Which of the two forms a title
        # poll catches depends on how fast the tiny sampler runs, so either counts. 40 steps: a 2-step run can end
        # within one frame of the page, which then sets no title between 0% and 100%.
        rerun = tmp_path / "tiny-sd1-seed-8.json"
        rerun.write_text(json.dumps(sd1_txt2img(seed=8, steps=40)))
        page.set_input_files("#comfy-file-input", str(rerun))
        page.get_by_text("tiny-sd1-seed-8", exact=True).first.wait_for()
        with page.expect_response(lambda r: "/api/view?" in r.url and f"filename={prefix}_" in r.url,
                                  timeout=90_000):
            page.get_by_test_id("queue-button").click()
        at_57 = r"\[57%\](\[\d+%\] KSampler| \*tiny-sd1-seed-8 - ComfyUI)"
        assert any(re.fullmatch(at_57, title) for title in record.titles(page)), \
            "\n".join(record.titles(page))
        assert_clean(record)


def test_a_workflow_saved_with_the_save_command_is_in_the_sidebar_after_a_reload(chromium: Chromium,
                                                                                  studio: HearthServer,
                                                                                  tmp_path: Path) -> None:
    workflow = tmp_path / "to-save.json"
    workflow.write_text(json.dumps(sd1_txt2img(seed=11)))
    returning_user(studio)
    with chromium.run() as run:
        page, record = run.open_editor(studio.base)
        page.set_input_files("#comfy-file-input", str(workflow))
        page.get_by_text("to-save", exact=True).first.wait_for()
        # The command the menu's Save runs (not Ctrl+S, which Chromium may take as its own save-page shortcut when
        # the canvas has no focus). Not awaited: it resolves once the name is given.
        page.evaluate("() => { window.app.extensionManager.command.execute('Comfy.SaveWorkflow'); }")
        name = page.get_by_role("dialog").get_by_role("textbox")
        name.fill(SAVED)
        with page.expect_response(lambda r: r.request.method == "POST"
                                  and "/api/userdata/workflows%2F" in r.url) as saved:
            name.press("Enter")
        assert saved.value.status == 200, saved.value.text()
        # Under the user's workflows, as the frontend lists them (/userdata), with the graph that was open.
        with studio.http() as client:
            listed = client.get("/api/userdata", params={"dir": "workflows"})
        assert listed.status_code == 200 and f"{SAVED}.json" in listed.json(), listed.text
        stored = json.loads((studio.data / "user" / "default" / "workflows" / f"{SAVED}.json").read_text())
        sampler = next(node for node in stored["nodes"] if node["type"] == "KSampler")
        assert len(stored["nodes"]) == 7 and sampler["widgets_values"][0] == 11
        page.reload()
        wait_for_editor(page)
        page.get_by_test_id("workflows-tab-button").click()
        page.locator(".side-bar-panel, [role=tabpanel], aside").get_by_text(SAVED, exact=True).first.wait_for()
        assert_clean(record)


def test_an_image_uploaded_through_load_image_is_in_its_list_and_the_input_folder(chromium: Chromium,
                                                                                   studio: HearthServer,
                                                                                   tmp_path: Path) -> None:
    workflow = tmp_path / "load.json"
    workflow.write_text(json.dumps(load_image(IMPORTED)))
    picked = tmp_path / UPLOADED
    picked.write_bytes(base64.b64decode(BLUE_PNG))
    returning_user(studio)
    with chromium.run() as run:
        page, record = run.open_editor(studio.base)
        page.set_input_files("#comfy-file-input", str(workflow))
        page.get_by_text("load", exact=True).first.wait_for()
        # The node's "choose file to upload" button is drawn on the canvas: click where the frontend drew it.
        x, y = page.evaluate("""() => {
            const node = window.app.graph.getNodeById(1), button = node.widgets.find(w => w.name === "upload");
            return window.app.canvas.ds.convertOffsetToCanvas(
                [node.pos[0] + node.size[0] / 2, node.pos[1] + button.y + button.computedHeight / 2]);
        }""")
        with page.expect_file_chooser() as chooser:
            page.locator("#graph-canvas").click(position={"x": x, "y": y})
        with page.expect_response(lambda r: r.url.startswith(studio.base + "/api/upload/image")) as uploaded:
            chooser.value.set_files(str(picked))
        assert uploaded.value.status == 200, uploaded.value.text()
        # The node now shows the uploaded file, and its list offers it beside the one already there.
        page.wait_for_function(f"""() => {{
            const widget = window.app.graph.getNodeById(1).widgets.find(w => w.name === "image");
            return widget.value === "{UPLOADED}";
        }}""")
        values = page.evaluate("""() => window.app.graph.getNodeById(1).widgets.find(w => w.name === "image")
            .options.values""")
        assert UPLOADED in values and IMPORTED in values
        assert (studio.data / "input" / UPLOADED).read_bytes() == picked.read_bytes()
        assert_clean(record)


def test_the_model_library_and_a_nodes_docs(chromium: Chromium, studio: HearthServer, tmp_path: Path) -> None:
    workflow = tmp_path / "docs.json"
    workflow.write_text(json.dumps(sd1_txt2img()))
    returning_user(studio)
    with chromium.run() as run:
        page, record = run.open_editor(studio.base)
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
        page.get_by_text("Hearth's tests").first.wait_for()  # the hover card's author
        # The node library files ComfyUI's nodes under "Comfy Nodes" (from /object_info's python_module), not under
        # "Extensions" as it did when Hearth named its own modules there.
        page.get_by_test_id("node-library-tab-button").click()
        page.get_by_placeholder(re.compile("Search")).first.fill("KSampler")
        page.get_by_text(re.compile("^comfy nodes$", re.IGNORECASE)).first.wait_for()
        assert page.get_by_text(re.compile("^extensions$", re.IGNORECASE)).count() == 0
        assert page.evaluate("() => window.app.graph.getNodeById(5).constructor.nodeData.nodeSource.type") == "core"
        # A node's documentation (comfyui-embedded-docs) in the properties panel's Info tab.
        page.get_by_test_id("node-library-tab-button").click()  # closes the library
        title = page.evaluate("""() => {
            const node = window.app.graph.getNodeById(5);
            return window.app.canvas.ds.convertOffsetToCanvas([node.pos[0] + 60, node.pos[1] - 15]);
        }""")
        page.locator("#graph-canvas").click(position={"x": title[0], "y": title[1]})
        page.get_by_label("Toggle properties panel").click()
        page.get_by_text("Info", exact=True).click()
        page.get_by_text(re.compile("^The KSampler works like this")).first.wait_for()
        assert record.answered("/docs/KSampler/en.md")
        assert_clean(record)
