"""The request boundary against a real ``comfy serve``: each hostile input of issue 24 is a 4xx naming its field,
a refused prompt never runs, and nothing accepted can break a later read."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from hearth_server import HearthServer, new_id, queue, slow_prompt, wait_history

from hearth.web.boundary import MAX_DEPTH, BadRequest, check_value, storable

DEEP_WIDGET = "[" * 950 + "1" + "]" * 950
DEEP_EXTRA = "[" * 300 + "1" + "]" * 300


def prompt_text(label: str, *, widget: str | None = None, title: str | None = None, class_type: str | None = None
                ) -> str:
    """A /prompt ``prompt`` as raw JSON text, so the test can send what json.dumps would never write."""
    node = {"class_type": "HearthTestSlow", "inputs": {"label": label, "seconds": 0, "steps": 1}}
    text = json.dumps({"1": node})
    if widget is not None:
        text = text.replace('"seconds": 0', f'"seconds": {widget}')
    if class_type is not None:
        text = text.replace('"HearthTestSlow"', class_type)
    if title is not None:
        text = text.replace('"inputs"', f'"_meta": {{"title": {title}}}, "inputs"')
    return text


# (case, raw body with {prompt} for the prompt text, the field the 400 must name)
HOSTILE_PROMPTS = [
    ("number NaN", '{"prompt": {prompt}, "number": NaN}', "number"),
    ("number Infinity", '{"prompt": {prompt}, "number": Infinity}', "number"),
    ("number -Infinity", '{"prompt": {prompt}, "number": -Infinity}', "number"),
    ("number 10**20", '{"prompt": {prompt}, "number": 100000000000000000000}', "number"),
    ("number 2**60", '{"prompt": {prompt}, "number": 1152921504606846976}', "number"),
    ("number 1e400", '{"prompt": {prompt}, "number": 1e400}', "number"),
    ("4401-digit integer", '{"prompt": {prompt}, "extra_data": {"n": ' + "7" * 4401 + "}}", "extra_data.n"),
    ("1e400-sized integer", '{"prompt": {prompt}, "extra_data": {"n": 1' + "0" * 400 + "}}", "extra_data.n"),
    ("extra_data nested 300 deep", '{"prompt": {prompt}, "extra_data": {"deep": ' + DEEP_EXTRA + "}}", "extra_data"),
    ("surrogate client_id", '{"prompt": {prompt}, "client_id": "\\ud800"}', "client_id"),
    ("surrogate prompt_id", '{"prompt": {prompt}, "prompt_id": "\\ud800"}', "prompt_id"),
    ("surrogate in extra_data", '{"prompt": {prompt}, "extra_data": {"note": "a\\udfffb"}}', "extra_data.note"),
    ("surrogate extra_data key", '{"prompt": {prompt}, "extra_data": {"\\ud800": 1}}', "extra_data"),
    ("create_time not a number", '{"prompt": {prompt}, "extra_data": {"create_time": "soon"}}',
     "extra_data.create_time"),
    ("prompt_id too long", '{"prompt": {prompt}, "prompt_id": "' + "p" * 300 + '"}', "prompt_id"),
]


def refused(response: httpx.Response, field: str | None, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "message", "details", "extra_info"}  # ComfyUI's shape
    if field is not None:
        assert error["extra_info"]["field"].startswith(field), error
        assert field.split(".")[0].split()[-1] in error["message"] or field == "body", error
    return error


def never_ran(client: httpx.Client, label: str) -> None:
    """Nothing with ``label`` is queued, running or in history, once a later prompt has finished."""
    wait_history(client, queue(client, slow_prompt(f"later-{new_id()}", seconds=0, steps=1)))
    assert label not in client.get("/queue").text
    assert label not in client.get("/history").text


@pytest.mark.parametrize(("case", "body", "field"), HOSTILE_PROMPTS, ids=[c[0] for c in HOSTILE_PROMPTS])
def test_hostile_prompt_field_is_refused_and_never_runs(client: httpx.Client, case: str, body: str,
                                                        field: str) -> None:
    label = f"hostile-{new_id()}"
    response = client.post("/prompt", content=body.replace("{prompt}", prompt_text(label)),
                           headers={"content-type": "application/json"})
    refused(response, field)
    never_ran(client, label)


@pytest.mark.parametrize(("case", "prompt", "field"), [
    ("widget NaN", dict(widget="NaN"), "prompt.1.inputs.seconds"),
    ("widget 1e400", dict(widget="1e400"), "prompt.1.inputs.seconds"),
    ("widget 10**30", dict(widget="1" + "0" * 30), "prompt.1.inputs.seconds"),
    ("widget nested 950 deep", dict(widget=DEEP_WIDGET), None),
    ("surrogate class_type", dict(class_type='"\\ud800"'), "prompt.1.class_type"),
    ("surrogate title", dict(title='"\\udc00"'), "prompt.1._meta.title"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_node_value_is_refused(client: httpx.Client, case: str, prompt: dict[str, str],
                                       field: str | None) -> None:
    label = f"node-{new_id()}"
    response = client.post("/prompt", content='{"prompt": ' + prompt_text(label, **prompt) + "}",
                           headers={"content-type": "application/json"})
    error = refused(response, field)
    if field is None:
        assert "nested deeper" in error["message"]
    never_ran(client, label)


def test_reads_answer_after_every_hostile_prompt(client: httpx.Client) -> None:
    for _, body, _ in HOSTILE_PROMPTS:
        client.post("/prompt", content=body.replace("{prompt}", prompt_text("x")),
                    headers={"content-type": "application/json"})
    done = queue(client, slow_prompt("readable", seconds=0, steps=1), extra_data={"note": "é ✓"}, client_id="c-1")
    wait_history(client, done)
    def finite_only(constant: str) -> None:
        raise AssertionError(f"a read answered {constant}")

    for path in ("/history", f"/history/{done}", "/jobs", "/queue", "/settings", f"/api/jobs/{done}"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        json.loads(response.text, parse_constant=finite_only)


def test_settings_refuse_what_cannot_be_read_back(client: httpx.Client) -> None:
    json_headers = {"content-type": "application/json"}
    refused(client.post("/settings/x", content='"\\ud800"', headers=json_headers), "body")
    refused(client.post("/settings/x", content='{"a": NaN}', headers=json_headers), "a")
    refused(client.post("/settings", content='{"\\ud800": 1}', headers=json_headers), "body")
    refused(client.post("/settings", content='{"k": {"v": "\\ud800"}}', headers=json_headers), "k.v")
    refused(client.post("/settings/" + "s" * 300, json=1), "path")  # a path segment longer than a name may be
    refused(client.post("/settings", json={"s" * 300: 1}), "setting id")
    assert client.post("/settings/Comfy.Boundary", json={"ok": "✓"}).status_code == 200
    settings = client.get("/settings")
    assert settings.status_code == 200 and settings.json()["Comfy.Boundary"] == {"ok": "✓"}


@pytest.mark.parametrize("path", ["/history?max_items=100000000000000000000", "/history?offset=100000000000000000000",
                                  "/api/history?max_items=" + "9" * 5000, "/jobs?limit=100000000000000000000",
                                  "/jobs?offset=100000000000000000000", "/history?max_items=-5"])
def test_out_of_range_query_integer_is_a_400_naming_it(client: httpx.Client, path: str) -> None:
    name = path.split("?")[1].split("=")[0]
    error = refused(client.get(path), None)
    assert name in error["message"], error


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/history/" + "a" * 9000, 414, "path"),
    ("/history?max_items=1&pad=" + "a" * 17000, 414, "query"),
    ("/history/a%00b", 400, "path"),
    ("/history/%ff%fe", 400, "path"),
    ("/history?offset=%ff", 400, "query offset"),
    ("/view?filename=a%00.png", 400, "query filename"),
    ("/history/" + "a" * 300, 400, "path"),
    ("/userdata/workflows%2F" + "n" * 256 + ".json", 400, "path"),
])
def test_url_limits(client: httpx.Client, path: str, status: int, field: str) -> None:
    refused(client.get(path), field, status)


def test_userdata_names_and_layout_conflicts_are_4xx(client: httpx.Client) -> None:
    base = f"b{new_id()[:8]}"
    assert client.post(f"/userdata/{base}%2Fa.json", content=b"{}").status_code == 200
    # a file under a file
    assert client.post(f"/userdata/{base}%2Fa.json%2Fb.json", content=b"{}").status_code == 409
    # a post onto a folder
    assert client.post(f"/userdata/{base}", content=b"{}").status_code == 409
    # a move onto a folder
    assert client.post(f"/userdata/{base}%2Fc.json", content=b"{}").status_code == 200
    assert client.post(f"/userdata/{base}%2Fc.json/move/{base}").status_code == 409
    refused(client.get("/userdata", params={"dir": "d" * 256}), "dir")
    refused(client.get("/v2/userdata", params={"path": "p" * 256}), "path")
    assert client.get(f"/userdata/{base}%2Fa.json").status_code == 200  # nothing was lost on the way


def test_a_userdata_path_thousands_of_folders_deep_is_refused_not_a_500(client: httpx.Client) -> None:
    # Making its folders one level at a time exhausted the stack (RecursionError, 500); found by the fuzz test.
    base = f"d{new_id()[:8]}"
    deep = client.post(f"/userdata/{base}/" + "a/" * 2000 + "x.json", content=b"{}")
    assert deep.status_code == 400 and "deeper than the limit of 64" in deep.text, deep.text
    fine = client.post(f"/userdata/{base}/" + "a/" * 60 + "x.json", content=b"{}")
    assert fine.status_code == 200, fine.text
    assert client.get("/system_stats").status_code == 200


def test_queue_and_history_delete_lists_are_checked(client: httpx.Client) -> None:
    refused(client.post("/queue", json={"delete": [{"id": 1}]}), "delete[]")
    refused(client.post("/history", content='{"delete": ["\\ud800"]}', headers={"content-type": "application/json"}),
            "delete.0")
    assert client.post("/history", json={"delete": ["no-such-prompt"]}).status_code == 200


def test_body_over_the_limit_is_a_413(client: httpx.Client) -> None:
    """The shared server takes 2 MB bodies: a bigger prompt is refused before it is read, let alone parsed."""
    big = {"prompt": slow_prompt("big", 0, 1), "extra_data": {"pad": "x" * (3 * 1024 * 1024)}}
    refused(client.post("/prompt", json=big), None, status=413)


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize(("value", "ok"), [
    (nested(MAX_DEPTH), True), (nested(MAX_DEPTH + 1), False), (2**64, True), (2**64 + 1, False), (-(2**64) - 1, False),
    (1.5e308, True), (math.inf, False), (-math.inf, False), (math.nan, False), ({"a": ["x", "\ud800"]}, False),
    ({"\udfff": 1}, False), ({"é✓": "日本"}, True), ([True, None, False, 0, -0.0], True),
])
def test_check_value_fast_pass_and_named_walk_agree(value: Any, ok: bool) -> None:
    if ok:
        check_value(value)
        return
    with pytest.raises(BadRequest) as refused_value:
        check_value({"outer": value})
    assert refused_value.value.field and refused_value.value.field.startswith("outer")


def test_storable_repairs_what_check_value_refuses() -> None:
    hostile = {"nan": math.nan, "big": 10**40, "text": "a\ud800", "\udc00key": 1, "deep": nested(200),
               "other": object(), "tuple": (1, math.inf)}
    repaired = storable(hostile)
    check_value(repaired, max_depth=MAX_DEPTH + 8)
    json.dumps(repaired, allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("node", [{"id": 1, "type": "HearthTestSlow", "inputs": "x"},
                                  {"id": 1, "type": "HearthTestSlow", "inputs": {"id": 1}}])
def test_ui_workflow_of_the_wrong_shape_is_a_400(client: httpx.Client, node: dict[str, Any]) -> None:
    refused(client.post("/hearth/workflow", json={"nodes": [node], "links": [], "version": 0.4}), "workflow")


def test_websocket_events_are_strict_json() -> None:
    from hearth.web.events import event_text

    def finite_only(constant: str) -> None:
        raise AssertionError(f"an event held {constant}")

    text = event_text("executed", {"output": {"value": [math.nan, math.inf], "text": ["a\ud800"]}, "node": "1"})
    message = json.loads(text, parse_constant=finite_only)
    assert message["data"]["output"] == {"value": [None, None], "text": ["a\ufffd"]}


def test_the_settings_file_cannot_be_made_a_folder_and_one_found_there_is_survived(client: httpx.Client,
                                                                                    tmp_path: Path) -> None:
    # Found by the fuzz test: POST /userdata/comfy.settings.json/x made a folder where the settings file belongs,
    # and every /settings request after it was a 500.
    refused = client.post("/userdata/comfy.settings.json%2Fx.json", content=b"{}")
    assert refused.status_code == 409 and "is the settings file" in refused.text, refused.text
    assert client.post("/userdata/comfy.settings.json/move/comfy.settings.json%2Fy.json").status_code in (404, 409)
    assert client.get("/settings").status_code == 200
    # A folder already there (made by hand or an older version): the defaults are read, a save says why it fails.
    data = tmp_path / "data"
    (data / "user" / "default" / "comfy.settings.json").mkdir(parents=True)
    server = HearthServer(data).start()
    try:
        with server.http() as http:
            assert http.get("/settings").json() == {}
            saved = http.post("/settings/Comfy.Test", json=1)
            assert saved.status_code == 409 and "is a folder" in saved.text, saved.text
    finally:
        server.stop()
