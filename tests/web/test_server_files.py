"""/view and uploads: files stay inside their folders, active content downloads, limits hold, masks apply."""

from __future__ import annotations

import io
import json
import struct
import zlib

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


@pytest.mark.parametrize("name", ["page.html", "script.js", "image.svg", "style.css", "page.shtml", "page.xht",
                                  "page.xhtml", "page.mht", "data.bin"])
def test_active_content_is_forced_to_download(client: httpx.Client, name: str) -> None:
    # Only images, video and audio render inline: an allow-list, as a deny-list missed .shtml and .xht.
    unique = f"{new_id()}-{name}"
    assert upload(client, unique, b"<script>alert(1)</script>").status_code == 200
    response = client.get("/view", params={"filename": unique, "type": "input"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("name", "media_type"), [("clip.flac", "audio/flac"), ("clip.opus", "audio/ogg"),
                                                  ("clip.mp3", "audio/mpeg"), ("clip.webm", "video/webm")])
def test_media_is_served_inline_with_a_type_of_its_own(client: httpx.Client, name: str, media_type: str) -> None:
    unique = f"{new_id()}-{name}"
    assert upload(client, unique, b"\0" * 64).status_code == 200
    response = client.get("/view", params={"filename": unique, "type": "input"})
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"].startswith("inline")


def test_userdata_serves_a_saved_page_as_a_download(client: httpx.Client) -> None:
    name = f"{new_id()}.html"
    assert client.post(f"/userdata/{name}", content=b"<script>alert(1)</script>").status_code == 200
    response = client.get(f"/userdata/{name}")
    assert response.status_code == 200 and response.headers["content-disposition"].startswith("attachment")
    assert response.headers["content-type"] == "application/octet-stream"
    saved = client.get(f"/userdata/{name.replace('.html', '.json')}")
    assert saved.status_code == 404
    assert client.post(f"/userdata/{name}.json", content=b"{}").status_code == 200
    workflow = client.get(f"/userdata/{name}.json")
    assert workflow.json() == {} and workflow.headers["content-type"] == "application/json"


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


# -- issue 24: names the filesystem cannot hold, paths taken by the other kind of thing, bombs ----------------------


def bomb(width: int, height: int) -> bytes:
    """A valid 1x1 grey PNG whose header claims ``width`` x ``height``: a few dozen bytes that decode to gigabytes."""
    data = bytearray(png((0,), mode="L", size=(1, 1)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR's CRC, so Pillow reads the header
    return bytes(data)


LONG = "n" * 252 + ".png"  # 256 bytes: one over what a file name may hold


@pytest.mark.parametrize("params", [
    {"filename": LONG},
    {"filename": "a.png", "subfolder": "s" * 256},
    {"filename": "a.png", "subfolder": f"ok/{'s' * 300}/ok"},
    {"filename": "é" * 128 + ".png"},  # 128 characters, 256 bytes of UTF-8
    {"filename": "a.png", "subfolder": "/".join(["d"] * 600)},  # every name short, the path over 1024 bytes
])
def test_view_names_too_long_are_400_naming_the_field(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/view", params={"type": "input", **params})
    assert response.status_code == 400, response.text
    field = "filename" if len(params["filename"]) > 5 else "subfolder"
    assert response.json()["error"]["message"].startswith(field)
    assert response.json()["error"]["extra_info"]["field"] == field


@pytest.mark.parametrize(("name", "subfolder", "field"), [
    (LONG, "", "image"),
    ("a.png", "s" * 256, "subfolder"),
    ("a.png", f"x/{'s' * 256}", "subfolder"),
])
def test_upload_names_too_long_are_400_and_write_nothing(server: HearthServer, client: httpx.Client, name: str,
                                                         subfolder: str, field: str) -> None:
    before = sorted(p.name for p in (server.data / "input").iterdir())
    for route in ("/upload/image", "/upload/mask"):
        response = upload(client, name, png(), route=route, subfolder=subfolder,
                          original_ref=json.dumps({"filename": "none.png"}))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"].startswith(field)
        assert response.json()["error"]["extra_info"]["field"] == field
    assert sorted(p.name for p in (server.data / "input").iterdir()) == before


def test_a_name_of_exactly_255_bytes_uploads_views_and_is_renamed_within_the_limit(client: httpx.Client) -> None:
    name = f"{new_id()}-{'m' * 218}.png"
    assert len(name.encode()) == 255
    assert upload(client, name, png((1, 1, 1))).json()["name"] == name  # the temporary file must fit too
    assert client.get("/view", params={"filename": name, "type": "input"}).content == png((1, 1, 1))
    # Another picture under that name would become "name (1).png", 259 bytes: refused, not a 500.
    response = upload(client, name, png((2, 2, 2)))
    assert response.status_code == 400 and "255 bytes" in response.json()["error"]["message"]
    assert upload(client, name, png((2, 2, 2)), overwrite="true").status_code == 200


def test_upload_whose_subfolder_is_a_file_is_409(client: httpx.Client) -> None:
    name = f"plain-{new_id()}.png"
    assert upload(client, name, png()).status_code == 200
    for subfolder in (name, f"{name}/deeper"):
        response = upload(client, "inside.png", png(), subfolder=subfolder)
        assert response.status_code == 409, response.text
        assert name in response.json()["error"]["message"]
    assert client.get("/view", params={"filename": name, "type": "input"}).content == png()


def test_upload_onto_a_folder_is_409_with_overwrite_and_renamed_without(client: httpx.Client) -> None:
    folder = f"folder-{new_id()}.png"
    assert upload(client, "x.png", png(), subfolder=folder).status_code == 200
    response = upload(client, folder, png(), overwrite="true")
    assert response.status_code == 409 and "is a folder" in response.json()["error"]["message"]
    assert upload(client, folder, png()).json()["name"] == folder.replace(".png", " (1).png")


@pytest.mark.parametrize("preview", ["webp;999", "jpeg;0", "webp;-5", "jpeg;99999999999999999999999", "webp;1e9",
                                     "webp;\u00b2", "jpeg;;", "webp;50;x", "x" * 5000])
def test_view_preview_quality_out_of_range_is_400(client: httpx.Client, preview: str) -> None:
    name = f"q-{new_id()}.png"
    upload(client, name, png())
    response = client.get("/view", params={"filename": name, "type": "input", "preview": preview})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith("preview")
    assert response.json()["error"]["extra_info"]["field"] == "preview"


def test_view_preview_quality_bounds_and_a_name_outside_latin_1(client: httpx.Client) -> None:
    name = upload(client, f"日本-\"quoted\"-{new_id()}.png", png()).json()["name"]
    assert name.startswith("日本-")
    for preview in ("webp;1", "jpeg;100", "png", "gif;50"):  # an unknown format is WebP, as in ComfyUI
        response = client.get("/view", params={"filename": name, "type": "input", "preview": preview})
        assert response.status_code == 200, (preview, response.text)
        assert response.headers["content-type"] in ("image/webp", "image/jpeg", "image/png")


@pytest.mark.parametrize("size", [(50000, 50000), (10000, 10000), (1, 2**31 - 1)])
def test_decompression_bomb_is_refused_at_upload_naming_the_limit(server: HearthServer, client: httpx.Client,
                                                                 size: tuple[int, int]) -> None:
    name = f"bomb-{new_id()}.png"
    response = upload(client, name, bomb(*size))
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["type"] == "image_too_large" and "89,478,485 pixels" in error["message"]
    assert error["extra_info"]["field"] == "image"
    assert f"{size[0] * size[1]:,} pixels" in error["message"]
    assert not (server.data / "input" / name).exists()
    original = f"orig-{new_id()}.png"
    upload(client, original, png())
    ref = json.dumps({"filename": original, "type": "input"})
    masked = upload(client, name, bomb(*size), route="/upload/mask", original_ref=ref)
    assert masked.status_code == 413 and masked.json()["error"]["type"] == "image_too_large"


def test_a_stored_bomb_never_breaks_a_read(server: HearthServer, client: httpx.Client) -> None:
    # A file that got into the input folder some other way (copied by hand, or uploaded before the check existed).
    name = f"stored-bomb-{new_id()}.png"
    (server.data / "input" / name).write_bytes(bomb(50000, 50000))
    raw = client.get("/view", params={"filename": name, "type": "input"})
    assert raw.status_code == 200 and raw.content == bomb(50000, 50000)
    for extra in ({"preview": "webp;50"}, {"channel": "a"}, {"channel": "rgb"},
                  {"preview": "jpeg;90", "channel": "a"}):
        response = client.get("/view", params={"filename": name, "type": "input", **extra})
        assert response.status_code == 422, (extra, response.text)
        assert "89,478,485 pixels" in response.json()["error"]["message"]
    ref = json.dumps({"filename": name, "subfolder": "", "type": "input"})
    masked = upload(client, f"mask-{new_id()}.png", png((0, 0, 0, 9), mode="RGBA"), route="/upload/mask",
                    original_ref=ref)
    assert masked.status_code == 422 and name in masked.json()["error"]["message"]


def test_corrupt_images_are_served_as_they_are(server: HearthServer, client: httpx.Client) -> None:
    name = f"cut-{new_id()}.png"
    data = png(size=(64, 64))[:-30]  # the end cut off: Pillow reads the header, then fails to decode
    (server.data / "input" / name).write_bytes(data)
    for extra in ({"preview": "webp;50"}, {"channel": "a"}):
        response = client.get("/view", params={"filename": name, "type": "input", **extra})
        assert response.status_code == 200 and response.content == data
    ref = json.dumps({"filename": name, "type": "input"})
    masked = upload(client, f"mask-{new_id()}.png", png(), route="/upload/mask", original_ref=ref)
    assert masked.status_code == 400, masked.text
