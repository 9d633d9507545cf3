"""ComfyUI packs placed in a pack host: their nodes register, validate and run like in-process ones.

One Runtime (and so one pack host) for the module: host starts are the slow part on a two-core machine.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from hearth.core.executor import Executor
from hearth.core.model_folders import ModelFolders
from hearth.core.runtime import Runtime
from hearth.core.trust import TrustPolicy
from hearth.sandbox import host as sandbox_host
from hearth.web.app import create_app
from hearth.web.config import ServerConfig
from tests.comfy_compat.tiny_sd import CHECKPOINT, make_models, node, sampling_inputs, txt2img_parts

# The name Starlette's TestClient sends as the Host: allowed as --allow-host would allow it (only loopback
# names reach a server without a token).
TESTSERVER = ["testserver"]

PACK = "iso_pack"
PACK_SOURCE = '''
import os
import time

import comfy.model_management
import comfy.utils
import folder_paths
import nodes
from server import PromptServer

# A model kind of the pack's own, registered as it imports (as real packs do).
folder_paths.add_model_folder_path("iso_models", os.path.join(folder_paths.models_dir, "iso_models"))


HOST_PID = os.getpid()


class Thing:
    """A type of the pack's own: it stays in the host."""

    def __init__(self, word):
        self.word = word


class IsoUpper:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "hi"}),
                             "mode": (["upper", "lower"],)},
                "optional": {"model": (folder_paths.get_filename_list("iso_models"),)}}

    @classmethod
    def VALIDATE_INPUTS(cls, text):
        return True if text != "forbidden" else "text may not be 'forbidden'"

    def run(self, text, mode, model=None):
        return ((text.upper() if mode == "upper" else text.lower()) + f" pid={os.getpid()}",)


class IsoInvert:
    CATEGORY = "iso"
    RETURN_TYPES = ("IMAGE", "LATENT")
    RETURN_NAMES = ("image", "latent")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "samples": ("LATENT",)}}

    def run(self, image, samples):
        return (1.0 - image, {"samples": samples["samples"] * 2, "pack": "iso"})


class IsoProgress:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 3})}}

    def run(self, steps):
        bar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            bar.update(1)
        PromptServer.instance.send_sync("iso.hello", {"steps": steps})
        return {"ui": {"text": [f"{steps} steps"]}, "result": ("done",)}


class IsoSleep:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 30.0})}}

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            comfy.model_management.throw_exception_if_processing_interrupted()
            time.sleep(0.02)
        return ("slept",)


class IsoDeaf:
    """Sleeps without ever looking at the interrupt flag: its host is killed past the grace time."""
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 60.0})}}

    def run(self, seconds):
        time.sleep(seconds)
        return ("woke",)


class IsoMakeThing:
    CATEGORY = "iso"
    RETURN_TYPES = ("ISO_THING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"word": ("STRING", {"default": "w"})}}

    def run(self, word):
        return (Thing(word),)


class IsoUseThing:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"thing": ("ISO_THING",)}, "optional": {"suffix": ("STRING", {"default": ""})}}

    def run(self, thing, suffix=""):
        assert type(thing).__name__ == "Thing", type(thing)
        return (f"thing says {thing.word}{suffix}",)


class IsoPatchModel:
    CATEGORY = "iso"
    RETURN_TYPES = ("MODEL", "STRING")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "key": ("STRING", {"default": ""})}}

    def run(self, model, key):
        import torch

        comfy.model_management.load_models_gpu([model])  # Hearth's process loads it when it is used
        patched = model.clone()
        weights = patched.get_key_patches(key)
        shape = weights[key][0].shape
        applied = patched.add_patches({key: torch.ones(shape)}, 0.5)
        options = patched.model_options
        return (patched, f"{applied} {sorted(options)} {patched.load_device.type}")


class IsoDeepModel:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def run(self, model):
        return (str(model.model.diffusion_model.input_blocks[0]),)


class IsoClipVae:
    CATEGORY = "iso"
    RETURN_TYPES = ("CONDITIONING", "IMAGE", "INT")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": ("CLIP",), "vae": ("VAE",), "samples": ("LATENT",), "text": ("STRING",)}}

    def run(self, clip, vae, samples, text):
        conditioning = clip.encode_from_tokens_scheduled(clip.tokenize(text))
        return (conditioning, vae.decode(samples["samples"]), vae.spacial_compression_decode())


class IsoCfgHook:
    """Guides with its own scale whatever the sampler's cfg: a function set on the MODEL, run in this host."""
    CATEGORY = "iso"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 2.5})}}

    def run(self, model, scale):
        def fixed(args):
            assert os.getpid() == HOST_PID  # runs here, in the pack's host
            return args["uncond"] + (args["cond"] - args["uncond"]) * scale

        patched = model.clone()
        patched.set_model_sampler_cfg_function(fixed)
        return (patched,)


class IsoSigmas:
    CATEGORY = "iso"
    RETURN_TYPES = ("FLOAT", "FLOAT", "SIGMAS")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def run(self, model):
        import torch

        sampling = model.get_model_object("model_sampling")
        return (sampling.sigma_max, sampling.percent_to_sigma(0.5), sampling.timestep(torch.tensor([1.0, 2.0])))


class IsoFreeU:
    """FreeU's way: read the UNet's width from its config, scale half the backbone features at the widest level."""
    CATEGORY = "iso"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 1.1})}}

    def run(self, model, scale):
        channels = model.model.model_config.unet_config["model_channels"]

        def output_block_patch(h, hsp, transformer_options):
            if h.shape[1] == channels * 2:
                h = h.clone()
                h[:, : h.shape[1] // 2] *= scale
            return h, hsp

        patched = model.clone()
        patched.set_model_output_block_patch(output_block_patch)
        return (patched,)


class IsoSampleDirect:
    """A custom sampler node: comfy.sample.sample with a latent_preview step callback, and nodes.common_ksampler."""
    CATEGORY = "iso"
    RETURN_TYPES = ("LATENT", "LATENT", "LATENT")
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "latent_image": ("LATENT",), "seed": ("INT", {"default": 7})}}

    def run(self, model, positive, negative, latent_image, seed):
        import comfy.sample
        import latent_preview

        latent = latent_image["samples"]
        noise = comfy.sample.prepare_noise(latent, seed)
        x0 = {}
        callback = latent_preview.prepare_callback(model, 2, x0)
        samples = comfy.sample.sample(model, noise, 2, 4.0, "euler", "normal", positive, negative, latent,
                                      denoise=1.0, callback=callback, seed=seed)
        (common,) = nodes.common_ksampler(model, seed, 2, 4.0, "euler", "normal", positive, negative, latent_image)
        return ({"samples": samples}, {"samples": x0["x0"]}, common)


class IsoObjectPatch:
    CATEGORY = "iso"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",)}}

    def run(self, model):
        patched = model.clone()
        patched.add_object_patch("model_sampling", object())
        return (patched,)


class IsoLazy:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"flag": ("BOOLEAN", {"default": True}), "a": ("STRING", {"lazy": True}),
                             "b": ("STRING", {"lazy": True})}}

    def check_lazy_status(self, flag, a=None, b=None):
        wanted = "a" if flag else "b"
        return [wanted] if (a if flag else b) is None else []

    def run(self, flag, a=None, b=None):
        return (a if flag else b,)


class IsoFresh:
    """Always re-run (IS_CHANGED answers NaN), and a list of the input folder's files, which change."""
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    runs = 0

    @classmethod
    def INPUT_TYPES(cls):
        import folder_paths

        return {"required": {"file": (sorted(os.listdir(folder_paths.get_input_directory())) or ["none"],)}}

    @classmethod
    def IS_CHANGED(cls, file):
        return float("nan")

    def run(self, file):
        type(self).runs += 1
        return {"ui": {"text": [f"{file} run {type(self).runs}"]}, "result": (file,)}


class IsoPreview:
    CATEGORY = "iso"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        from PIL import Image

        bar = comfy.utils.ProgressBar(2)
        bar.update_absolute(1, 2, ("JPEG", Image.new("RGB", (32, 32), (200, 10, 10)), 16))
        bar.update_absolute(2, 2)
        return {}


class IsoSaver(nodes.SaveImage):
    """A subclass of Hearth's SaveImage, as many packs write theirs: it saves in the host, into the output folder."""

    CATEGORY = "iso"


class IsoMissing:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "x"})}}

    def run(self, text):
        return (comfy.utils.a_name_hearth_lacks(text),)


class IsoCrash:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "x"})}}

    def run(self, text):
        os._exit(3)


class IsoRaise:
    CATEGORY = "iso"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "x"})}}

    def run(self, text):
        raise ValueError(f"bad value {text}")


NODE_CLASS_MAPPINGS = {c.__name__: c for c in (IsoUpper, IsoInvert, IsoProgress, IsoSleep, IsoDeaf, IsoMakeThing,
                                                IsoUseThing, IsoPatchModel, IsoDeepModel, IsoClipVae, IsoCfgHook, IsoObjectPatch, IsoSigmas, IsoFreeU, IsoSampleDirect,
                                                IsoLazy, IsoFresh, IsoPreview, IsoSaver, IsoMissing, IsoCrash, IsoRaise)}
NODE_DISPLAY_NAME_MAPPINGS = {"IsoUpper": "Upper (isolated)"}
WEB_DIRECTORY = "./web"
'''


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def runtime(models: ModelFolders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:

    available, reason = sandbox_host.isolation_available()
    if not available:
        pytest.skip(f"this machine cannot make a pack host's namespaces: {reason}")
    (models.base / "iso_models").mkdir(exist_ok=True)
    (models.base / "iso_models" / "iso.safetensors").write_bytes(b"")
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    work = tmp_path_factory.mktemp("work")
    config = ServerConfig(allowed_hosts=TESTSERVER, data=work, models_dir=models.base)
    custom = work / "custom_nodes"
    pack = custom / PACK
    (pack / "web").mkdir(parents=True)
    (pack / "web" / "iso.js").write_text("// the pack's frontend\n")
    (pack / "__init__.py").write_text(textwrap.dedent(PACK_SOURCE))
    (custom / "plain_pack.py").write_text(textwrap.dedent('''
        import os

        class PlainPid:
            CATEGORY = "plain"
            RETURN_TYPES = ("STRING",)
            FUNCTION = "run"

            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {"text": ("STRING", {"default": ""})}}

            def run(self, text):
                return (f"{text} in {os.getpid()}",)

        class PlainShow:
            """Hands whatever it gets to the test, untouched, as its UI output."""
            CATEGORY = "plain"
            RETURN_TYPES = ()
            FUNCTION = "run"
            OUTPUT_NODE = True

            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {"value": ("*",)}}

            def run(self, value):
                return {"ui": {"value": [value]}}

        NODE_CLASS_MAPPINGS = {"PlainPid": PlainPid, "PlainShow": PlainShow}
    '''))
    assert config.folders is not None
    config.folders.input.mkdir(parents=True, exist_ok=True)  # as a server's is: IsoFresh lists it
    built = Runtime.build(pack_hosts=sandbox_host, model_folders=models, custom_nodes=[custom], environ={}, output=config.folders.output,
                          input=config.folders.input, temp=config.folders.temp,
                          trust=TrustPolicy(mode="untrusted", trusted=frozenset({"plain_pack"})))
    try:
        with built.activate():
            records = built.plugins.records
            assert records[PACK].error is None, records[PACK].traceback
            assert not records[PACK].notes, records[PACK].notes
            built.server_config = config  # type: ignore[attr-defined] - for the server test
            yield built
    finally:
        loader = built.plugins.pm.get_plugin("custom_nodes") if built._plugins is not None else None
        if loader is not None:
            loader.close()
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def executor(runtime: Runtime) -> Executor:
    return runtime.executor


def run(executor: Executor, prompt: dict[str, Any]) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    result = executor.run(prompt, emit=lambda event, data: events.append((event, data)))
    return result, events


def test_isolated_nodes_register_with_their_attributes_and_placement(runtime: Runtime) -> None:
    records = runtime.plugins.records
    assert (records[PACK].placement, records[PACK].placement_why) == ("pack host", "not trusted")
    assert (records["plain_pack"].placement, records["plain_pack"].placement_why) == (
        "in-process", "trusted by you (comfy trust)")
    info = runtime.nodes.object_info()
    upper = info["IsoUpper"]
    assert upper["display_name"] == "Upper (isolated)" and upper["category"] == "iso"
    assert upper["input"]["required"]["mode"][0] == ["upper", "lower"]
    assert upper["input"]["optional"]["model"][0] == ["iso.safetensors"]  # the pack's own kind, read in its host
    assert upper["python_module"] == f"custom_nodes.{PACK}"
    assert info["IsoInvert"]["output"] == ["IMAGE", "LATENT"]
    assert info["IsoInvert"]["output_name"] == ["image", "latent"]
    assert info["IsoProgress"]["output_node"] is True
    loader = runtime.plugins.pm.get_plugin("custom_nodes")
    assert loader.web_directories[PACK].name == "web"


def test_validation_runs_the_packs_own_checks_in_its_host(executor: Executor) -> None:
    def prompt(text: str, mode: str) -> dict[str, Any]:
        return {"1": node("IsoUpper", text=text, mode=mode), "2": node("PlainShow", value=["1", 0])}

    good = executor.validate(prompt("ok", "upper"))
    assert good.ok, good
    bad = executor.validate(prompt("forbidden", "upper"))
    assert not bad.ok and "text may not be 'forbidden'" in str(bad.node_errors)
    wrong = executor.validate(prompt("ok", "sideways"))
    assert not wrong.ok and "sideways" in str(wrong.node_errors)


def test_a_workflow_mixing_in_process_and_isolated_nodes_moves_tensors_across(executor: Executor) -> None:
    import os

    prompt = {
        "1": node("EmptyImage", width=8, height=4, batch_size=1, color=0x336699),
        "2": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "3": node("IsoInvert", image=["1", 0], samples=["2", 0]),
        "4": node("ImageInvert", image=["3", 0]),
        "5": node("IsoUpper", text="mixed", mode="upper"),
        "6": node("PlainPid", text=["5", 0]),
        "s1": node("PlainShow", value=["4", 0]),
        "s2": node("PlainShow", value=["3", 1]),
        "s3": node("PlainShow", value=["6", 0]),
    }
    result, _ = run(executor, prompt)
    assert result.ok, result.error
    image = shown(result, "s1")
    expected = torch.tensor([0x33, 0x66, 0x99], dtype=torch.float32) / 255.0
    assert image.shape == (1, 4, 8, 3) and torch.allclose(image[0, 0, 0], expected, atol=1e-6)  # inverted twice
    latent = shown(result, "s2")
    assert latent["pack"] == "iso" and latent["samples"].shape == (1, 4, 8, 8)
    # The isolated node ran in another process; the in-process one here.
    text = shown(result, "s3")
    assert text.startswith("MIXED pid=") and text.endswith(f" in {os.getpid()}")
    assert f"pid={os.getpid()} " not in text


def shown(result: Any, node_id: str) -> Any:
    """The value a PlainShow node received."""
    return result.outputs[node_id]["value"][0]


def test_progress_and_server_messages_reach_the_events(executor: Executor) -> None:
    result, events = run(executor, {"1": node("IsoProgress", steps=3)})
    assert result.ok, result.error
    assert result.outputs["1"]["text"] == ["3 steps"]
    progress = [d for e, d in events if e == "progress"]
    assert [(p["value"], p["max"]) for p in progress] == [(1, 3), (2, 3), (3, 3)]
    assert all(p["node"] == "1" and p["prompt_id"] == result.prompt_id for p in progress)


def test_a_pack_type_stays_in_the_host_and_comes_back_as_the_same_object(executor: Executor) -> None:
    result, _ = run(executor, {"1": node("IsoMakeThing", word="kept"), "2": node("IsoUseThing", thing=["1", 0]),
                               "s1": node("PlainShow", value=["1", 0]), "s2": node("PlainShow", value=["2", 0])})
    assert result.ok, result.error
    handle = shown(result, "s1")
    assert type(handle).__name__ == "HostValue" and "Thing" in repr(handle)
    assert shown(result, "s2") == "thing says kept"


def test_interrupt_stops_an_isolated_node(executor: Executor) -> None:
    started = time.monotonic()
    timer = threading.Timer(1.0, executor.interrupt)
    timer.start()
    try:
        result, _ = run(executor, {"1": node("IsoSleep", seconds=30.0)})
    finally:
        timer.cancel()
    assert result.status == "interrupted", result.error
    assert time.monotonic() - started < 15
    again, _ = run(executor, {"1": node("IsoUpper", text="after", mode="lower")})
    assert again.ok, again.error


def test_an_interrupt_never_reaches_the_next_prompts_call(executor: Executor, runtime: Runtime,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The executor reuses one interrupt flag for every prompt. A watcher that was slow to notice its interrupted
    # call had ended (here: held up just after its ask until the next prompt's call began, as a loaded 2-core CI
    # machine did once) must not interrupt the next call, which shares that flag.
    pack = runtime.plugins.pm.get_plugin("custom_nodes").isolated[PACK]
    host = pack.host
    real_interrupt, real_call = host.interrupt, host.call
    calls_begun: list[str] = []
    held_up = threading.Event()

    def counting_call(node_type: str, *args: Any, **kwargs: Any) -> Any:
        calls_begun.append(node_type)
        return real_call(node_type, *args, **kwargs)

    def slow_watcher_interrupt(*args: Any) -> None:
        real_interrupt(*args)
        if not held_up.is_set():
            held_up.set()
            begun = len(calls_begun)
            deadline = time.monotonic() + 20
            while len(calls_begun) == begun and time.monotonic() < deadline:
                time.sleep(0.01)  # until the next prompt's call has begun
            time.sleep(0.2)  # and is running in the host

    monkeypatch.setattr(host, "call", counting_call)
    monkeypatch.setattr(host, "interrupt", slow_watcher_interrupt)
    timer = threading.Timer(0.5, executor.interrupt)
    timer.start()
    try:
        first, _ = run(executor, {"1": node("IsoSleep", seconds=30.0)})
    finally:
        timer.cancel()
    assert first.status == "interrupted"
    second, _ = run(executor, {"1": node("IsoSleep", seconds=1.0)})
    assert second.ok, second.error


def test_a_node_error_in_the_host_is_reported_as_an_in_process_one(executor: Executor) -> None:
    # What the frontend shows (execution_error's type and message) is the node's own error, as in-process; the
    # pack and the host's traceback are in the traceback.
    result, _ = run(executor, {"1": node("IsoRaise", text="7"), "s": node("PlainShow", value=["1", 0])})
    assert result.status == "error"
    assert result.error["exception_type"] == "builtins.ValueError"
    assert result.error["exception_message"] == "bad value 7"
    assert f"in pack {PACK!r}'s host" in "".join(result.error["traceback"])


def test_an_interrupt_set_before_the_host_call_starts_is_not_lost(runtime: Runtime) -> None:
    # The watcher sees the flag at once, before the host has begun the call; a host asked between calls does
    # nothing, so the watcher asks again until the call is seen to stop (a one-shot ask ran the whole node).
    from types import SimpleNamespace

    from hearth_comfy_compat.isolated import InterruptProcessing

    pack = runtime.plugins.pm.get_plugin("custom_nodes").isolated[PACK]
    ctx = SimpleNamespace(interrupt=threading.Event())
    ctx.interrupt.set()
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(InterruptProcessing):
            pack._call("IsoSleep", "run", {"seconds": 30.0}, ctx, None)
    assert time.monotonic() - started < 15


def test_a_node_deaf_to_the_interrupt_is_stopped_by_killing_its_host(executor: Executor, runtime: Runtime) -> None:
    pack = runtime.plugins.pm.get_plugin("custom_nodes").isolated[PACK]
    before = pack.restarts
    started = time.monotonic()
    timer = threading.Timer(0.5, executor.interrupt)
    timer.start()
    try:
        result, _ = run(executor, {"1": node("IsoDeaf", seconds=60.0)})
    finally:
        timer.cancel()
    assert result.status == "interrupted"
    assert time.monotonic() - started < 30  # the grace time (5 s) and the kill, not the minute asleep
    assert pack.restarts == before + 1
    again, _ = run(executor, {"1": node("IsoUpper", text="fresh host", mode="upper")})
    assert again.ok, again.error


def test_model_methods_cross_and_deep_access_needs_trust(executor: Executor) -> None:
    loader = node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT)
    key = "diffusion_model.out.2.bias"
    prompt = {"1": loader, "2": node("IsoPatchModel", model=["1", 0], key=key),
              "s1": node("PlainShow", value=["1", 0]), "s2": node("PlainShow", value=["2", 0]),
              "s3": node("PlainShow", value=["2", 1])}
    result, _ = run(executor, prompt)
    assert result.ok, result.error
    original, patched = shown(result, "s1"), shown(result, "s2")
    assert type(patched) is type(original) and patched is not original and patched.is_clone(original)
    assert shown(result, "s3") == f"['{key}'] ['transformer_options'] cpu"
    before, after = original.get_key_patches(key)[key][0], patched.get_key_patches(key)[key][0]
    assert torch.allclose(after.float(), before.float() + 0.5)  # patched weights are float32 on a CPU
    deep, _ = run(executor, {"1": loader, "2": node("IsoDeepModel", model=["1", 0]),
                             "s": node("PlainShow", value=["2", 0])})
    assert deep.status == "error"
    message = deep.error["exception_message"]
    assert "must be trusted to run" in message and "MODEL.model.diffusion_model" in message and PACK in message


def test_clip_and_vae_methods_run_in_hearths_process_and_match_the_in_process_nodes(executor: Executor) -> None:
    prompt = {
        "1": node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT),
        "2": node("EmptyLatentImage", width=64, height=64, batch_size=1),
        "3": node("IsoClipVae", clip=["1", 1], vae=["1", 2], samples=["2", 0], text="a red cat"),
        "4": node("CLIPTextEncode", clip=["1", 1], text="a red cat"),
        "5": node("VAEDecode", vae=["1", 2], samples=["2", 0]),
        "s1": node("PlainShow", value=["3", 0]), "s2": node("PlainShow", value=["4", 0]),
        "s3": node("PlainShow", value=["3", 1]), "s4": node("PlainShow", value=["5", 0]),
        "s5": node("PlainShow", value=["3", 2]),
    }
    result, _ = run(executor, prompt)
    assert result.ok, result.error
    isolated, in_process = shown(result, "s1"), shown(result, "s2")
    assert torch.equal(isolated[0][0], in_process[0][0])
    assert torch.equal(isolated[0][1]["pooled_output"], in_process[0][1]["pooled_output"])
    assert torch.equal(shown(result, "s3"), shown(result, "s4"))
    assert shown(result, "s5") == shown(result, "s3").shape[1] // 8  # image height / the latent's 8 rows


def test_a_guidance_function_set_on_a_model_runs_in_the_host_when_hearth_samples(executor: Executor) -> None:
    def sampled(model: list[Any], cfg: float, extra: dict[str, Any]) -> Any:
        prompt = {**txt2img_parts(), **extra,
                  "5": node("KSampler", **sampling_inputs(model=model, cfg=cfg), denoise=1.0),
                  "s": node("PlainShow", value=["5", 0])}
        result, _ = run(executor, prompt)
        assert result.ok, result.error
        return shown(result, "s")["samples"]

    hooked = sampled(["8", 0], 7.0, {"8": node("IsoCfgHook", model=["1", 0], scale=2.5)})
    assert torch.allclose(hooked, sampled(["1", 0], 2.5, {}), atol=1e-5)
    assert not torch.allclose(hooked, sampled(["1", 0], 7.0, {}), atol=1e-3)


def test_a_freeu_style_patch_reads_the_unet_config_and_patches_output_blocks(executor: Executor) -> None:
    def sampled(extra: dict[str, Any]) -> Any:
        prompt = {**txt2img_parts(), **extra,
                  "5": node("KSampler", **sampling_inputs(model=["8" if extra else "1", 0]), denoise=1.0),
                  "s": node("PlainShow", value=["5", 0])}
        result, _ = run(executor, prompt)
        assert result.ok, result.error
        return shown(result, "s")["samples"]

    plain = sampled({})
    assert torch.allclose(sampled({"8": node("IsoFreeU", model=["1", 0], scale=1.0)}), plain, atol=1e-6)
    assert not torch.allclose(sampled({"8": node("IsoFreeU", model=["1", 0], scale=1.5)}), plain, atol=1e-4)


def test_a_custom_sampler_node_samples_through_hearth_with_its_step_callback_called_back(executor: Executor) -> None:
    prompt = {**txt2img_parts(),
              "5": node("KSampler", **sampling_inputs(), denoise=1.0),
              "6": node("IsoSampleDirect", model=["1", 0], positive=["2", 0], negative=["3", 0], latent_image=["4", 0],
                        seed=7),
              **{f"s{i}": node("PlainShow", value=link) for i, link in
                 enumerate([["5", 0], ["6", 0], ["6", 1], ["6", 2]])}}
    result, events = run(executor, prompt)
    assert result.ok, result.error
    expected = shown(result, "s0")["samples"]
    assert torch.equal(shown(result, "s1")["samples"], expected)  # comfy.sample.sample
    assert torch.equal(shown(result, "s3")["samples"], expected)  # nodes.common_ksampler
    assert shown(result, "s2")["samples"].shape == expected.shape  # x0, kept by the host's step callback
    steps = [(d["value"], d["max"]) for e, d in events if e == "progress" and d["node"] == "6"]
    assert steps.count((2, 2)) >= 2  # both samplings reported their steps against the isolated node


def test_model_sampling_is_read_in_hearths_process(executor: Executor) -> None:
    prompt = {"1": node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT), "2": node("IsoSigmas", model=["1", 0]),
              "s0": node("PlainShow", value=["1", 0]), "s1": node("PlainShow", value=["2", 0]),
              "s2": node("PlainShow", value=["2", 1]), "s3": node("PlainShow", value=["2", 2])}
    result, _ = run(executor, prompt)
    assert result.ok, result.error
    sampling = shown(result, "s0").get_model_object("model_sampling")
    assert shown(result, "s1") == pytest.approx(float(sampling.sigma_max))
    assert shown(result, "s2") == pytest.approx(float(sampling.percent_to_sigma(0.5)))
    assert torch.allclose(shown(result, "s3"), sampling.timestep(torch.tensor([1.0, 2.0])))


def test_an_object_patch_needs_trust(executor: Executor) -> None:
    prompt = {"1": node("CheckpointLoaderSimple", ckpt_name=CHECKPOINT), "2": node("IsoObjectPatch", model=["1", 0]),
              "s": node("PlainShow", value=["2", 0])}
    result, _ = run(executor, prompt)
    assert result.status == "error"
    assert result.error["exception_message"] == (
        f"pack {PACK!r} must be trusted to run: it uses MODEL.add_object_patch, whose object would live in "
        "Hearth's process")


def test_lazy_inputs_ask_the_host_which_to_evaluate(executor: Executor) -> None:
    prompt = {"1": node("PlainPid", text="chosen"), "2": node("IsoCrash", text="never evaluated"),
              "3": node("IsoLazy", flag=True, a=["1", 0], b=["2", 0]), "s": node("PlainShow", value=["3", 0])}
    result, _ = run(executor, prompt)
    assert result.ok, result.error
    assert shown(result, "s").startswith("chosen in ")
    assert "2" not in result.executed


def test_is_changed_is_asked_in_the_host_and_input_lists_are_read_again(executor: Executor, runtime: Runtime,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth_comfy_compat import isolated

    monkeypatch.setattr(isolated, "INPUT_TYPES_TTL_S", 0.0)
    runtime.folders.input.mkdir(parents=True, exist_ok=True)
    (runtime.folders.input / "fresh.png").write_bytes(b"not really a png")
    choices = runtime.nodes["IsoFresh"].inputs().specs["file"].choices
    assert choices is not None and "fresh.png" in choices
    first, _ = run(executor, {"1": node("IsoFresh", file="fresh.png")})
    second, _ = run(executor, {"1": node("IsoFresh", file="fresh.png")})
    assert first.ok and second.ok, (first.error, second.error)
    runs = [int(r.outputs["1"]["text"][0].rpartition(" ")[2]) for r in (first, second)]
    assert runs[1] == runs[0] + 1  # not taken from the cache: IS_CHANGED said NaN


def test_input_lists_answer_at_once_while_the_host_runs_a_node(executor: Executor, runtime: Runtime,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth_comfy_compat import isolated

    monkeypatch.setattr(isolated, "INPUT_TYPES_TTL_S", 0.0)
    pack = runtime.plugins.pm.get_plugin("custom_nodes").isolated[PACK]
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run(executor, {"1": node("IsoSleep",
                                                                                            seconds=20.0)})[0]))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not pack.busy() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pack.busy()
        started = time.monotonic()
        for _ in range(5):
            runtime.nodes["IsoFresh"].inputs()
        assert time.monotonic() - started < 0.5  # not 5 waits behind the running node
    finally:
        executor.interrupt()
        worker.join(30)
    assert outcome["result"].status == "interrupted"


def test_a_pack_subclassing_save_image_saves_into_the_output_folder_from_its_host(executor: Executor,
                                                                                  runtime: Runtime) -> None:
    prompt = {"1": node("EmptyImage", width=8, height=8, batch_size=1, color=0xFF0000),
              "2": node("IsoSaver", images=["1", 0], filename_prefix="isolated/red")}
    result, _ = run(executor, prompt)
    assert result.ok, result.error
    [saved] = result.outputs["2"]["images"]
    assert saved["subfolder"] == "isolated" and saved["type"] == "output"
    assert (runtime.folders.output / "isolated" / saved["filename"]).stat().st_size > 0


def test_a_preview_reaches_the_progress_event_as_an_image(executor: Executor) -> None:
    result, events = run(executor, {"1": node("IsoPreview")})
    assert result.ok, result.error
    progress = [d for e, d in events if e == "progress"]
    assert [(p["value"], p["max"]) for p in progress] == [(1, 2), (2, 2)]
    assert progress[0]["preview"][:2] == b"\xff\xd8" and "preview" not in progress[1]


def test_an_internal_hearth_lacks_fails_the_node_and_is_listed_for_comfy_plugins(executor: Executor,
                                                                                 runtime: Runtime) -> None:
    result, _ = run(executor, {"1": node("IsoMissing", text="x"), "s": node("PlainShow", value=["1", 0])})
    assert result.status == "error"
    assert "Hearth does not provide comfy.utils.a_name_hearth_lacks" in result.error["exception_message"]
    loader = runtime.plugins.pm.get_plugin("custom_nodes")
    assert "comfy.utils.a_name_hearth_lacks" in loader.missing_internals()[PACK]


def test_a_crashing_node_fails_with_one_line_and_the_next_prompt_runs(executor: Executor) -> None:
    result, _ = run(executor, {"1": node("IsoCrash", text="boom"), "s": node("PlainShow", value=["1", 0])})
    assert result.status == "error"
    message = result.error["exception_message"]
    assert message.startswith(f"pack {PACK!r}") and "IsoCrash" in message and "\n" not in message.strip(), message
    again, _ = run(executor, {"1": node("IsoUpper", text="again", mode="upper")})
    assert again.ok, again.error


def test_after_a_host_crash_a_pack_types_cached_handle_is_made_again(executor: Executor) -> None:
    def use(suffix: str) -> Any:
        result, _ = run(executor, {"1": node("IsoMakeThing", word="kept"),
                                   "2": node("IsoUseThing", thing=["1", 0], suffix=suffix),
                                   "s": node("PlainShow", value=["2", 0])})
        assert result.ok, result.error
        return shown(result, "s")

    assert use("!") == "thing says kept!"
    # The crash comes in a prompt that keeps IsoMakeThing's output in the cache.
    crashed, _ = run(executor, {"1": node("IsoMakeThing", word="kept"), "c": node("IsoCrash", text="boom"),
                                "s": node("PlainShow", value=["c", 0]), "t": node("PlainShow", value=["1", 0])})
    assert crashed.status == "error" and "1" in crashed.cached
    # IsoMakeThing's cached Thing lived in the host that crashed: it is made again in the new one.
    assert use("?") == "thing says kept?"


def test_through_the_server_progress_and_a_pack_message_reach_the_websocket(runtime: Runtime) -> None:
    from starlette.testclient import TestClient

    app = create_app(runtime.server_config, runtime)  # type: ignore[attr-defined]
    with TestClient(app) as client, client.websocket_connect("/ws?clientId=dana") as ws:
        assert ws.receive_json()["type"] == "status"
        info = client.get("/object_info/IsoUpper").json()
        assert info["IsoUpper"]["input"]["required"]["mode"][0] == ["upper", "lower"]
        assert client.get(f"/extensions/{PACK}/iso.js").text == "// the pack's frontend\n"  # read by Hearth
        assert f"/extensions/{PACK}/iso.js" in client.get("/api/extensions").json()
        prompt = {"1": node("IsoProgress", steps=2)}
        queued = client.post("/prompt", json={"prompt": prompt, "client_id": "dana"})
        assert queued.status_code == 200, queued.text
        prompt_id = queued.json()["prompt_id"]
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = ws.receive()
            if not message.get("text"):
                continue
            event = json.loads(message["text"])
            seen.append(event)
            if event["type"] == "executing" and event["data"].get("node") is None:
                break
        kinds = [e["type"] for e in seen]
        assert "iso.hello" in kinds, kinds
        assert [e["data"] for e in seen if e["type"] == "iso.hello"] == [{"steps": 2}]
        progress = [(e["data"]["value"], e["data"]["max"]) for e in seen if e["type"] == "progress"]
        assert progress == [(1, 2), (2, 2)]
        history = client.get(f"/history/{prompt_id}").json()
        assert history[prompt_id]["outputs"]["1"]["text"] == ["2 steps"]
        crashed = client.post("/prompt", json={"prompt": {"1": node("IsoCrash", text="x"),
                                                           "s": node("PlainShow", value=["1", 0])},
                                                "client_id": "dana"})
        assert crashed.status_code == 200
        after = client.post("/prompt", json={"prompt": {"1": node("IsoProgress", steps=1)}, "client_id": "dana"})
        after_id = after.json()["prompt_id"]
        while time.monotonic() < deadline and after_id not in (found := client.get(f"/history/{after_id}").json()):
            time.sleep(0.1)
        assert found[after_id]["outputs"]["1"]["text"] == ["1 steps"]
