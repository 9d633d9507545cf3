"""A V3 pack using io.MatchType (an output whose type follows its input, as KJNodes' image nodes do) and
io.MultiType (an input taking an IMAGE or a MASK)."""

import torch
from comfy_api.latest import ComfyExtension, io


class PassThrough(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        template = io.MatchType.Template("T", allowed_types=[io.Image, io.Mask])
        return io.Schema(node_id="V3TypesPass", category="tests",
                         inputs=[io.MatchType.Input("value", template=template)],
                         outputs=[io.MatchType.Output(template=template, display_name="value")])

    @classmethod
    def execute(cls, value):
        return io.NodeOutput(value)


class Brightest(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        # An output named like an input, as Easy-Use's nodes have: ComfyUI allows it.
        return io.Schema(node_id="V3TypesBrightest", category="tests",
                         inputs=[io.MultiType.Input("pixels", types=[io.Image, io.Mask])],
                         outputs=[io.Float.Output("pixels")])

    @classmethod
    def execute(cls, pixels):
        return io.NodeOutput(float(pixels.max()))


class Solid(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="V3TypesSolid", category="tests", inputs=[], outputs=[io.Image.Output()])

    @classmethod
    def execute(cls):
        return io.NodeOutput(torch.full((1, 4, 4, 3), 0.25))


class BoxArea(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="V3TypesBoxArea", category="tests", inputs=[io.BoundingBox.Input("box")],
                         outputs=[io.Int.Output()])

    @classmethod
    def execute(cls, box):
        return io.NodeOutput(box["width"] * box["height"])


class Extension(ComfyExtension):
    async def get_node_list(self):
        return [PassThrough, Brightest, Solid, BoxArea]


async def comfy_entrypoint():
    return Extension()
