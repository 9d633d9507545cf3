"""A pack with HTTP routes and server events, written the way ComfyUI packs write them (module-level imports)."""

import os

import folder_paths
from aiohttp import ClientSession, web
from server import PromptServer

routes = PromptServer.instance.routes
NOTES: dict[str, str] = {}
SEEN_PROMPTS: list[str] = []


@routes.get("/routes_pack/notes")
async def list_notes(request):
    prefix = request.url.query.get("prefix", "")
    return web.json_response({"notes": sorted(k for k in NOTES if k.startswith(prefix))})


@routes.post("/routes_pack/notes/{name}")
async def save_note(request):
    body = await request.json()
    if "text" not in body:
        return web.json_response({"error": "text is required"}, status=400)
    NOTES[request.match_info["name"]] = body["text"]
    return web.json_response({"saved": request.match_info["name"]}, status=201)


@routes.get("/routes_pack/notes/{name}")
async def read_note(request):
    name = request.match_info["name"]
    if name not in NOTES:
        raise web.HTTPNotFound(text=f"no note {name}")
    return web.Response(text=NOTES[name], content_type="text/plain")


@routes.get(r"/routes_pack/version/{major:\d+}")
async def version(request):
    return web.json_response({"major": int(request.match_info["major"])})


@routes.post("/routes_pack/upload")
async def upload(request):
    post = await request.post()
    image = post.get("image")
    data = image.file.read()
    target = os.path.join(folder_paths.get_input_directory(), image.filename)
    with open(target, "wb") as f:
        f.write(data)
    return web.json_response({"name": image.filename, "size": len(data), "label": post.get("label")})


@routes.post("/routes_pack/broadcast")
async def broadcast(request):
    body = await request.json()
    PromptServer.instance.send_sync("routes_pack.message", {"text": body["text"]}, body.get("sid"))
    return web.Response(status=204)


@routes.get("/routes_pack/fetch")
async def fetch(request):
    async with ClientSession() as session, session.get(request.rel_url.query["url"]) as response:
        return web.Response(body=await response.read())


def tag_prompt(json_data):
    # Stamp every submitted prompt; a real pack rewrites widget values (wildcards, seeds) here.
    SEEN_PROMPTS.append(json_data.get("client_id") or "")
    for node in json_data["prompt"].values():
        if node.get("class_type") == "RoutesPackEcho" and node["inputs"].get("text") == "__tag__":
            node["inputs"]["text"] = "tagged by routes_pack"
    return json_data


PromptServer.instance.add_on_prompt_handler(tag_prompt)


class RoutesPackEcho:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": ""})}, "hidden": {"unique_id": "UNIQUE_ID"}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "echo"
    OUTPUT_NODE = True
    CATEGORY = "routes_pack"

    def echo(self, text, unique_id=None):
        server = PromptServer.instance
        server.send_sync("routes_pack.echo", {"text": text, "node": unique_id}, server.client_id)
        server.send_progress_text(f"echo: {text}", unique_id)
        return {"ui": {"text": [text]}, "result": (text,)}


NODE_CLASS_MAPPINGS = {"RoutesPackEcho": RoutesPackEcho}
