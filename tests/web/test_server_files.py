"""/view and uploads: files stay inside their folders, active content downloads, limits hold, masks apply."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from hearth_server import HearthServer, new_id, queue, wait_history
from PIL import Image


def png(color: tuple[int, ...] = (0, 128, 255), mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client: httpx.Client, name: str, data: bytes, route: str = "/upload/image",
           **fields: str) -> httpx.Response:
    return client.post(f"/api{route}", files={"image": (name, data, "image/png")}, data=fields)


def test_upload_then_view_and_use_in_a_prompt(client: httpx.Client) -> None:
    name = f"up-{new_id()}.png"
    response = upload(client, name, png())
    assert response.status_code == 200
    assert response.json() == {"name": name, "subfolder": "", "type": "input"}
    viewed = client.get("/view", params={"filename": name, "type": "input"})
    assert viewed.status_code == 200 and viewed.headers["content-type"] == "image/png"
    assert viewed.content == png()
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    entry = wait_history(client, queue(client, prompt))
    preview = entry["outputs"]["2"]["images"][0]
    assert preview["type"] == "temp"
    assert client.get("/api/view", params=preview).status_code == 200


def test_same_name_different_content_is_renamed_unless_overwrite(client: httpx.Client) -> None:
    name = f"same-{new_id()}.png"
    assert upload(client, name, png((1, 2, 3))).json()["name"] == name
    assert upload(client, name, png((1, 2, 3))).json()["name"] == name  # identical bytes: same file
    renamed = upload(client, name, png((9, 9, 9))).json()["name"]
    assert renamed == name.replace(".png", " (1).png")
    assert upload(client, name, png((7, 7, 7)), overwrite="true").json()["name"] == name
    image = Image.open(io.BytesIO(client.get("/view", params={"filename": name, "type": "input"}).content))
    assert image.getpixel((0, 0)) == (7, 7, 7)


def test_upload_into_subfolder_and_type(client: httpx.Client) -> None:
    response = upload(client, "sub.png", png(), subfolder="clips/a", type="temp")
    assert response.json() == {"name": "sub.png", "subfolder": "clips/a", "type": "temp"}
    assert client.get("/view", params={"filename": "sub.png", "subfolder": "clips/a", "type": "temp"}).status_code == 200


@pytest.mark.parametrize("params", [
    {"filename": "../hearth.sqlite3"},
    {"filename": "hearth.sqlite3", "subfolder": ".."},
    {"filename": "passwd", "subfolder": "/etc"},
    {"filename": "/etc/passwd"},
    {"filename": "x", "subfolder": "../../.."},
])
def test_view_refuses_path_traversal(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/view", params={"type": "output", **params})
    assert response.status_code in (400, 403)
    assert "SQLite" not in response.text and "root:" not in response.text


def test_view_unknown_type_and_missing_file(client: httpx.Client) -> None:
    assert client.get("/view", params={"filename": "a.png", "type": "secrets"}).status_code == 400
    assert client.get("/view", params={"filename": f"{new_id()}.png"}).status_code == 404


@pytest.mark.parametrize("subfolder", ["..", "../..", "/tmp"])
def test_upload_refuses_path_traversal(client: httpx.Client, subfolder: str) -> None:
    response = upload(client, "evil.png", png(), subfolder=subfolder)
    assert response.status_code == 403


def test_upload_file_name_cannot_climb(client: httpx.Client) -> None:
    response = upload(client, "../../escape.png", png())
    assert response.status_code == 200 and response.json()["name"] == "escape.png"


@pytest.mark.parametrize("name", ["page.html", "script.js", "image.svg", "style.css"])
def test_active_content_is_forced_to_download(client: httpx.Client, name: str) -> None:
    unique = f"{new_id()}-{name}"
    assert upload(client, unique, b"<script>alert(1)</script>").status_code == 200
    response = client.get("/view", params={"filename": unique, "type": "input"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment")


def test_upload_over_the_limit_is_413_and_writes_nothing(server: HearthServer, client: httpx.Client) -> None:
    name = f"big-{new_id()}.png"
    response = upload(client, name, b"\0" * (3 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert not (server.data / "input" / name).exists()


def test_malformed_upload_is_400(client: httpx.Client) -> None:
    assert client.post("/upload/image", content=b"nonsense",
                       headers={"content-type": "multipart/form-data; boundary=x"}).status_code == 400
    assert client.post("/upload/image", data={"type": "input"}).status_code == 400


def test_mask_upload_applies_alpha_to_the_original(client: httpx.Client) -> None:
    original = f"orig-{new_id()}.png"
    upload(client, original, png((10, 20, 30)))
    mask = png((0, 0, 0, 77), mode="RGBA")
    ref = json.dumps({"filename": original, "subfolder": "", "type": "input"})
    response = upload(client, f"mask-{original}", mask, route="/upload/mask", original_ref=ref)
    assert response.status_code == 200
    data = client.get("/view", params={"filename": response.json()["name"], "type": "input"}).content
    assert Image.open(io.BytesIO(data)).getpixel((0, 0)) == (10, 20, 30, 77)
    missing = json.dumps({"filename": "nope.png", "type": "input"})
    assert upload(client, "m.png", mask, route="/upload/mask", original_ref=missing).status_code == 404


def test_view_preview_and_channels(client: httpx.Client) -> None:
    name = f"rgba-{new_id()}.png"
    upload(client, name, png((200, 100, 50, 128), mode="RGBA"))
    webp = client.get("/view", params={"filename": name, "type": "input", "preview": "webp;80"})
    assert webp.headers["content-type"] == "image/webp" and webp.content[8:12] == b"WEBP"
    rgb = Image.open(io.BytesIO(client.get("/view", params={"filename": name, "type": "input",
                                                             "channel": "rgb"}).content))
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (200, 100, 50)
    alpha = Image.open(io.BytesIO(client.get("/view", params={"filename": name, "type": "input",
                                                               "channel": "a"}).content))
    assert alpha.getpixel((0, 0))[3] == 128
