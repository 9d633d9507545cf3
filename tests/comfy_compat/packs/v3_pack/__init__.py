"""A pack written for ComfyUI's V3 node API: io.ComfyNode classes listed by comfy_entrypoint()."""

import torch
from comfy_api.input import VideoInput  # only used by a node Hearth cannot run; the pack must still load
from comfy_api.latest import ComfyAPI, ComfyExtension, Input, io, ui
from typing_extensions import override

THING = io.Custom("V3_THING")
MADE: list[str] = []  # which MakeThing nodes ran, so a test can see that lazy inputs stay unevaluated


class SolidImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="V3SolidImage",
            display_name="Solid Image (V3)",
            category="v3_pack/image",
            inputs=[io.Int.Input("width", default=8, min=1, max=64), io.Int.Input("height", default=8, min=1, max=64),
                    io.Float.Input("value", default=0.5, min=0.0, max=1.0, step=0.01)],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, width, height, value) -> io.NodeOutput:
        return io.NodeOutput(torch.full((1, height, width, 3), value))


class Brightness(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="V3Brightness",
            display_name="Brightness (V3)",
            category="v3_pack/image",
            description="Multiplies pixel values, clamped to 0..1.",
            inputs=[
                io.Image.Input("image"),
                io.Float.Input("factor", default=1.0, min=0.0, max=4.0, step=0.05,
                               display_mode=io.NumberDisplay.slider, tooltip="1.0 keeps the image"),
            ],
            outputs=[io.Image.Output(display_name="brighter")],
        )

    @classmethod
    def execute(cls, image, factor) -> io.NodeOutput:
        return io.NodeOutput((image * factor).clamp(0.0, 1.0))


class RepeatText(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="V3RepeatText",
            display_name="Repeat Text (V3)",
            category="v3_pack/text",
            inputs=[
                io.String.Input("text", multiline=True, default="hi"),
                io.Int.Input("times", default=2, min=0, max=100),
                io.Combo.Input("separator", options=["space", "newline", "none"], default="space"),
                io.Boolean.Input("shout", default=False, optional=True),
            ],
            outputs=[io.String.Output(display_name="text"), io.Int.Output(display_name="length")],
        )

    @classmethod
    def validate_inputs(cls, times, separator):
        if separator == "none" and times > 10:
            return "more than 10 repeats need a separator"
        return True

    @classmethod
    def fingerprint_inputs(cls, text, times, separator, shout=False):
        return f"{text}|{times}|{separator}|{shout}"

    @classmethod
    def execute(cls, text, times, separator, shout=False) -> io.NodeOutput:
        joined = {"space": " ", "newline": "\n", "none": ""}[separator].join([text] * times)
        if shout:
            joined = joined.upper()
        return io.NodeOutput(joined, len(joined))


class WhoAmI(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="V3WhoAmI",
            category="v3_pack/debug",
            inputs=[io.String.Input("label", default="node")],
            outputs=[io.String.Output()],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, label) -> io.NodeOutput:
        text = f"{label} {cls.hidden.unique_id} of {len(cls.hidden.prompt)}"
        return io.NodeOutput(text, ui=ui.PreviewText(text))


class MakeThing(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3MakeThing", category="v3_pack/lazy",
                         inputs=[io.String.Input("name")], outputs=[THING.Output()])

    @classmethod
    def execute(cls, name) -> io.NodeOutput:
        MADE.append(name)
        return io.NodeOutput({"name": name})


class PickThing(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="V3PickThing",
            category="v3_pack/lazy",
            inputs=[io.Boolean.Input("use_a", default=True), THING.Input("a", lazy=True), THING.Input("b", lazy=True)],
            outputs=[io.String.Output()],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def check_lazy_status(cls, use_a, a=None, b=None):
        assert cls.hidden.unique_id is not None  # hidden values reach check_lazy_status too, not as arguments
        wanted = "a" if use_a else "b"
        return [wanted] if (a if use_a else b) is None else []

    @classmethod
    def execute(cls, use_a, a=None, b=None) -> io.NodeOutput:
        return io.NodeOutput((a if use_a else b)["name"])


class PreviewAsync(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3PreviewAsync", display_name="Preview (V3, async)", category="v3_pack/image",
                         inputs=[io.Image.Input("images")], is_output_node=True)

    @classmethod
    async def execute(cls, images) -> io.NodeOutput:
        api = ComfyAPI()
        for done in range(1, len(images) + 1):
            await api.execution.set_progress(done, len(images))
        return io.NodeOutput(ui=ui.PreviewImage(images, cls=cls))


class Gate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3Gate", category="v3_pack/flow",
                         inputs=[io.AnyType.Input("value"), io.Boolean.Input("open", default=True)],
                         outputs=[io.AnyType.Output()])

    @classmethod
    def execute(cls, value, open) -> io.NodeOutput:
        return io.NodeOutput(value) if open else io.NodeOutput(block_execution="the gate is closed")


class SplitWords(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3SplitWords", category="v3_pack/text", inputs=[io.String.Input("text")],
                         outputs=[io.String.Output(display_name="words", is_output_list=True)])

    @classmethod
    def execute(cls, text) -> io.NodeOutput:
        return io.NodeOutput(text.split())


class JoinAll(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3JoinAll", category="v3_pack/text", is_input_list=True,
                         inputs=[io.String.Input("words", force_input=True), io.String.Input("sep", default=",")],
                         outputs=[io.String.Output()], hidden=[io.Hidden.unique_id])

    @classmethod
    def execute(cls, words, sep) -> io.NodeOutput:
        return io.NodeOutput(f"{sep[0].join(words)}@{cls.hidden.unique_id}")


class SaveWithHelper(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3SaveImage", category="v3_pack/image", is_output_node=True,
                         inputs=[io.Image.Input("images"), io.String.Input("filename_prefix", default="v3")])

    @classmethod
    def execute(cls, images: Input.Image, filename_prefix) -> io.NodeOutput:
        return io.NodeOutput(ui=ui.ImageSaveHelper.get_save_images_ui(images, filename_prefix, cls=cls))


class VideoFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3VideoFrames", category="v3_pack/video", inputs=[io.Video.Input("video")],
                         outputs=[io.Image.Output()])

    @classmethod
    def execute(cls, video) -> io.NodeOutput:
        if not isinstance(video, VideoInput):
            raise TypeError("expected a video")
        return io.NodeOutput(video.get_components().images)


class GrowingInputs(io.ComfyNode):
    """Uses a V3 feature Hearth lacks: the pack loads, this node is skipped and reported."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id="V3Growing", inputs=[io.Autogrow.Input("values")], outputs=[])

    @classmethod
    def execute(cls, **values) -> io.NodeOutput:
        return io.NodeOutput()


class V3PackExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [SolidImage, Brightness, RepeatText, WhoAmI, MakeThing, PickThing, PreviewAsync, Gate, SplitWords, JoinAll,
                SaveWithHelper, VideoFrames, GrowingInputs]


async def comfy_entrypoint() -> V3PackExtension:
    return V3PackExtension()
