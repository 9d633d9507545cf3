"""ComfyUI's V3 node API (``comfy_api.latest.io``): ``ComfyNode`` classes declared by one ``Schema``.

A V3 node is a class of classmethods::

    class Repeat(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="Repeat", category="text",
                             inputs=[io.String.Input("text"), io.Int.Input("times", default=2, min=0)],
                             outputs=[io.String.Output()])

        @classmethod
        def execute(cls, text, times):
            return io.NodeOutput(text * times)

Every ``ComfyNode`` subclass also answers the V1 node contract (``INPUT_TYPES``, ``RETURN_TYPES``, ``FUNCTION``,
``IS_CHANGED``, ``VALIDATE_INPUTS``... as class attributes computed from the schema), so Hearth's registry,
validator, executor and ``/object_info`` treat it like any node. Hidden inputs (``io.Hidden.unique_id``...) arrive
in ``cls.hidden`` while the node runs, never as ``execute`` arguments, as in ComfyUI.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from hearth.core.types import ExecutionBlocker
from hearth_comfy_compat import hook

# -- hidden inputs -----------------------------------------------------------------------------------------------


class Hidden(enum.StrEnum):
    """Values the executor supplies instead of the user; a schema lists the ones its node reads."""

    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"
    auth_token_comfy_org = "AUTH_TOKEN_COMFY_ORG"
    api_key_comfy_org = "API_KEY_COMFY_ORG"


class HiddenHolder:
    """``cls.hidden`` while a node runs: each hidden value the schema asked for, ``None`` for the others."""

    def __init__(self, unique_id: str | None = None, prompt: Any = None, extra_pnginfo: Any = None,
                 dynprompt: Any = None, auth_token_comfy_org: str | None = None,
                 api_key_comfy_org: str | None = None) -> None:
        self.unique_id = unique_id
        self.prompt = prompt
        self.extra_pnginfo = extra_pnginfo
        self.dynprompt = dynprompt
        self.auth_token_comfy_org = auth_token_comfy_org
        self.api_key_comfy_org = api_key_comfy_org

    def __getattr__(self, name: str) -> Any:
        return None  # a hidden value of a newer ComfyUI: absent here, as ComfyUI answers for one not asked for

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HiddenHolder:
        return cls(**{h.name: values.get(h.name) for h in Hidden})

    def __repr__(self) -> str:
        return f"HiddenHolder(unique_id={self.unique_id!r})"


_HIDDEN: contextvars.ContextVar[HiddenHolder | None] = contextvars.ContextVar("comfy_v3_hidden", default=None)


# -- inputs and outputs ------------------------------------------------------------------------------------------


class NumberDisplay(enum.StrEnum):
    number = "number"
    slider = "slider"


class ControlAfterGenerate(enum.StrEnum):
    fixed = "fixed"
    increment = "increment"
    decrement = "decrement"
    randomize = "randomize"


class UploadType(enum.StrEnum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class FolderType(enum.StrEnum):
    input = "input"
    output = "output"
    temp = "temp"


class RemoteOptions:
    """Where a combo loads its choices from at run time in the browser (a route of the pack's)."""

    def __init__(self, route: str, refresh_button: bool, control_after_refresh: str = "first",
                 timeout: int | None = None, max_retries: int | None = None, refresh: int | None = None) -> None:
        self.route, self.refresh_button, self.control_after_refresh = route, refresh_button, control_after_refresh
        self.timeout, self.max_retries, self.refresh = timeout, max_retries, refresh

    def as_dict(self) -> dict[str, Any]:
        return _pruned({"route": self.route, "refresh_button": self.refresh_button,
                        "control_after_refresh": self.control_after_refresh, "timeout": self.timeout,
                        "max_retries": self.max_retries, "refresh": self.refresh})


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return value.as_dict() if isinstance(value, RemoteOptions) else value


def _pruned(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in values.items() if v is not None}


class Input:
    """An input socket or widget. Made through a type: ``io.Int.Input("steps", default=20)``."""

    io_type = "*"

    def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                 tooltip: str | None = None, lazy: bool | None = None, extra_dict: Mapping[str, Any] | None = None,
                 raw_link: bool | None = None, advanced: bool | None = None, **newer_options: Any) -> None:
        if not isinstance(id, str) or not id:
            raise TypeError(f"{type(self).__qualname__}: the input id must be a non-empty string, got {id!r}")
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.lazy = lazy
        self.extra_dict = dict(extra_dict or {})
        self.raw_link = raw_link
        self.advanced = advanced
        # Options of ComfyUI versions newer than this layer: accepted (the pack still loads), not shown.
        self.newer_options = newer_options

    def get_io_type(self) -> str:
        return self.io_type

    def as_dict(self) -> dict[str, Any]:
        """The input's options, as ComfyUI's ``/object_info`` shows them (``None`` values left out)."""
        return _pruned({"display_name": self.display_name, "optional": self.optional, "tooltip": self.tooltip,
                        "lazy": self.lazy, "rawLink": self.raw_link, "advanced": self.advanced}) \
            | _pruned(self.extra_dict)

    def v1(self) -> tuple[str, dict[str, Any]]:
        """The V1 ``(TYPE, options)`` pair; the section (required/optional) says what ``optional`` said."""
        options = self.as_dict()
        options.pop("optional", None)
        return self.get_io_type(), options


class WidgetInput(Input):
    """An input with a widget (a value typed in the node) and a default."""

    def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                 tooltip: str | None = None, lazy: bool | None = None, default: Any = None,
                 socketless: bool | None = None, widget_type: str | None = None, force_input: bool | None = None,
                 extra_dict: Mapping[str, Any] | None = None, raw_link: bool | None = None,
                 advanced: bool | None = None, **newer_options: Any) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced, **newer_options)
        self.default = default
        self.socketless = socketless
        self.widget_type = widget_type
        self.force_input = force_input

    def get_io_type(self) -> str:
        return self.widget_type or self.io_type

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | _pruned({"default": self.default, "socketless": self.socketless,
                                            "widgetType": self.widget_type, "forceInput": self.force_input})


class Output:
    """An output socket: ``io.Image.Output()``, ``io.Int.Output("count", is_output_list=True)``."""

    io_type = "*"

    def __init__(self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None,
                 is_output_list: bool = False, **newer_options: Any) -> None:
        self.id = id
        self.display_name = display_name
        self.tooltip = tooltip
        self.is_output_list = is_output_list

    def get_io_type(self) -> str:
        return self.io_type


class ComfyTypeI:
    """A type with inputs only."""

    io_type = "*"
    Type: Any = Any
    Input: type[Input] = Input


class ComfyTypeIO(ComfyTypeI):
    """A type usable as input and output."""

    Output: type[Output] = Output


ComfyType = ComfyTypeIO


def comfytype(io_type: str) -> Callable[[type], type]:
    """Bind a type class, and its ``Input`` and ``Output`` classes, to ``io_type`` (``"IMAGE"``, ``"MY_TYPE"``)."""

    def bind(cls: type) -> type:
        cls.io_type = io_type
        for part in ("Input", "Output"):
            base = getattr(cls, part, None)
            if isinstance(base, type):
                setattr(cls, part, type(part, (base,), {"io_type": io_type, "__qualname__": f"{cls.__name__}.{part}",
                                                        "__module__": cls.__module__}))
        return cls

    return bind


def Custom(io_type: str) -> type[ComfyTypeIO]:  # noqa: N802 - ComfyUI's name
    """A type of the pack's own, passed between its nodes by link: ``io.Custom("MY_TYPE").Input("thing")``."""
    if not isinstance(io_type, str) or not io_type:
        raise TypeError(f"io.Custom needs a type name such as 'MY_TYPE', got {io_type!r}")
    return comfytype(io_type)(type(io_type, (ComfyTypeIO,), {"__module__": __name__}))


@comfytype("BOOLEAN")
class Boolean(ComfyTypeIO):
    Type = bool

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: bool | None = None,
                     label_on: str | None = None, label_off: str | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: Mapping[str, Any] | None = None,
                     raw_link: bool | None = None, advanced: bool | None = None, **newer_options: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced, **newer_options)
            self.label_on, self.label_off = label_on, label_off

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _pruned({"label_on": self.label_on, "label_off": self.label_off})


class _Number(WidgetInput):
    def __init__(self, id: str, display_name: str | None = None, optional: bool = False, tooltip: str | None = None,
                 lazy: bool | None = None, default: Any = None, min: Any = None, max: Any = None, step: Any = None,
                 control_after_generate: Any = None, display_mode: Any = None, socketless: bool | None = None,
                 force_input: bool | None = None, extra_dict: Mapping[str, Any] | None = None,
                 raw_link: bool | None = None, advanced: bool | None = None, round: Any = None,
                 **newer_options: Any) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                         extra_dict, raw_link, advanced, **newer_options)
        self.min, self.max, self.step, self.round = min, max, step, round
        self.control_after_generate = control_after_generate
        self.display_mode = display_mode

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | _pruned({"min": self.min, "max": self.max, "step": self.step,
                                            "round": self.round, "display": self.display_mode,
                                            "control_after_generate": self.control_after_generate})


@comfytype("INT")
class Int(ComfyTypeIO):
    Type = int

    class Input(_Number):
        pass


@comfytype("FLOAT")
class Float(ComfyTypeIO):
    Type = float

    class Input(_Number):
        pass


@comfytype("STRING")
class String(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, multiline: bool = False,
                     placeholder: str | None = None, default: str | None = None,
                     dynamic_prompts: bool | None = None, socketless: bool | None = None,
                     force_input: bool | None = None, extra_dict: Mapping[str, Any] | None = None,
                     raw_link: bool | None = None, advanced: bool | None = None, **newer_options: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, force_input,
                             extra_dict, raw_link, advanced, **newer_options)
            self.multiline, self.placeholder, self.dynamic_prompts = multiline, placeholder, dynamic_prompts

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _pruned({"multiline": self.multiline, "placeholder": self.placeholder,
                                                "dynamicPrompts": self.dynamic_prompts})


def _options(node_input: str, options: Any) -> list[Any]:
    if isinstance(options, type) and issubclass(options, enum.Enum):
        return [member.value for member in options]
    if options is None:
        return []
    if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
        raise TypeError(f"io.Combo.Input({node_input!r}): options must be a list or an Enum, got {options!r}")
    return [_plain(o) for o in options]


@comfytype("COMBO")
class Combo(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, options: Any = None, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: Any = None,
                     control_after_generate: Any = None, upload: Any = None, image_folder: Any = None,
                     remote: Any = None, socketless: bool | None = None, extra_dict: Mapping[str, Any] | None = None,
                     raw_link: bool | None = None, advanced: bool | None = None, **newer_options: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, _plain(default), socketless, None, None,
                             extra_dict, raw_link, advanced, **newer_options)
            self.multiselect = False
            self.options = _options(id, options)
            self.control_after_generate = control_after_generate
            self.upload, self.image_folder, self.remote = upload, image_folder, remote

        def as_dict(self) -> dict[str, Any]:
            extra = _pruned({"control_after_generate": self.control_after_generate, "image_folder": self.image_folder,
                             "remote": self.remote})
            if self.upload is not None:
                extra[_plain(self.upload)] = True
            return super().as_dict() | {"multiselect": self.multiselect, "options": list(self.options)} | extra


@comfytype("COMBO")
class MultiCombo(ComfyTypeI):
    Type = list

    class Input(Combo.Input):
        def __init__(self, id: str, options: Any = None, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: Any = None,
                     placeholder: str | None = None, chip: bool | None = None, **kwargs: Any) -> None:
            super().__init__(id, options, display_name, optional, tooltip, lazy, default, **kwargs)
            self.multiselect = True
            self.placeholder, self.chip = placeholder, chip

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _pruned({"multi_select": True, "placeholder": self.placeholder,
                                                "chip": self.chip})


def _type(name: str, io_type: str) -> type[ComfyTypeIO]:
    cls = type(name, (ComfyTypeIO,), {"__module__": __name__, "__qualname__": name})
    return comfytype(io_type)(cls)


Image = _type("Image", "IMAGE")
Mask = _type("Mask", "MASK")
Latent = _type("Latent", "LATENT")
Conditioning = _type("Conditioning", "CONDITIONING")
Model = _type("Model", "MODEL")
Clip = _type("Clip", "CLIP")
Vae = _type("Vae", "VAE")
ClipVision = _type("ClipVision", "CLIP_VISION")
ClipVisionOutput = _type("ClipVisionOutput", "CLIP_VISION_OUTPUT")
ControlNet = _type("ControlNet", "CONTROL_NET")
StyleModel = _type("StyleModel", "STYLE_MODEL")
Gligen = _type("Gligen", "GLIGEN")
UpscaleModel = _type("UpscaleModel", "UPSCALE_MODEL")
Sampler = _type("Sampler", "SAMPLER")
Sigmas = _type("Sigmas", "SIGMAS")
Noise = _type("Noise", "NOISE")
Guider = _type("Guider", "GUIDER")
LoraModel = _type("LoraModel", "LORA_MODEL")
Hooks = _type("Hooks", "HOOKS")
Audio = _type("Audio", "AUDIO")
Video = _type("Video", "VIDEO")
Photomaker = _type("Photomaker", "PHOTOMAKER")
SVG = _type("SVG", "SVG")
LossMap = _type("LossMap", "LOSS_MAP")
Voxel = _type("Voxel", "VOXEL")
Mesh = _type("Mesh", "MESH")
HookKeyframes = _type("HookKeyframes", "HOOK_KEYFRAMES")
TimestepsRange = _type("TimestepsRange", "TIMESTEPS_RANGE")
LatentOperation = _type("LatentOperation", "LATENT_OPERATION")
FlowControl = _type("FlowControl", "FLOW_CONTROL")
Accumulation = _type("Accumulation", "ACCUMULATION")
Load3DCamera = _type("Load3DCamera", "LOAD3D_CAMERA")
AudioEncoder = _type("AudioEncoder", "AUDIO_ENCODER")
AudioEncoderOutput = _type("AudioEncoderOutput", "AUDIO_ENCODER_OUTPUT")
LatentUpscaleModel = _type("LatentUpscaleModel", "LATENT_UPSCALE_MODEL")
WanCameraEmbedding = _type("WanCameraEmbedding", "WAN_CAMERA_EMBEDDING")
Tracks = _type("Tracks", "TRACKS")
Point = _type("Point", "POINT")
FaceAnalysis = _type("FaceAnalysis", "FACE_ANALYSIS")
BBOX = _type("BBOX", "BBOX")
SEGS = _type("SEGS", "SEGS")
AnyType = _type("AnyType", "*")


@comfytype("BOUNDING_BOX")
class BoundingBox(ComfyTypeIO):
    """A rectangle ``{"x", "y", "width", "height"}``, edited in the node by default (a socketless widget)."""

    Type = dict

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, socketless: bool = True, default: dict[str, int] | None = None,
                     component: str | None = None, force_input: bool | None = None, **newer_options: Any) -> None:
            if default is None:
                default = {"x": 0, "y": 0, "width": 512, "height": 512}
            super().__init__(id, display_name, optional, tooltip, default=default, socketless=socketless,
                             force_input=force_input, **newer_options)
            self.component = component

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _pruned({"component": self.component})


MATCH_TYPE = "COMFY_MATCHTYPE_V3"


@comfytype(MATCH_TYPE)
class MatchType(ComfyTypeIO):
    """Inputs and outputs that take one type together, chosen by what is linked (``io.MatchType.Template("T")``
    shared by the sockets). The browser enforces the match; Hearth's validator lets any type through, as
    ComfyUI's backend does."""

    class Template:
        def __init__(self, template_id: str, allowed_types: Any = None) -> None:
            self.template_id = template_id
            allowed = AnyType if allowed_types is None else allowed_types
            self.allowed_types = list(allowed) if isinstance(allowed, (list, tuple)) else [allowed]

        def as_dict(self) -> dict[str, Any]:
            return {"template_id": self.template_id,
                    "allowed_types": ",".join(str(getattr(t, "io_type", t)) for t in self.allowed_types)}

    class Input(Input):
        def __init__(self, id: str, template: MatchType.Template, display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     extra_dict: Mapping[str, Any] | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None, **newer_options: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced,
                             **newer_options)
            self.template = template

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | {"template": self.template.as_dict()}

    class Output(Output):
        def __init__(self, template: MatchType.Template, id: str | None = None, display_name: str | None = None,
                     tooltip: str | None = None, is_output_list: bool = False, **newer_options: Any) -> None:
            super().__init__(id, display_name, tooltip, is_output_list, **newer_options)
            self.template = template


@comfytype("COMFY_MULTITYPED_V3")
class MultiType(ComfyTypeI):
    """An input that takes any of several types (``io.MultiType.Input("x", types=[io.Image, io.Mask])``): its V1
    type is their union, ``"IMAGE,MASK"``. Given an input instead of an id, that input's widget and type come
    first."""

    class Input(Input):
        def __init__(self, id: str | Input, types: list[Any], display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     extra_dict: Mapping[str, Any] | None = None, raw_link: bool | None = None,
                     advanced: bool | None = None, **newer_options: Any) -> None:
            self.input_override = id if isinstance(id, Input) else None
            if self.input_override is not None:
                optional = optional or self.input_override.optional
                tooltip = tooltip or self.input_override.tooltip
                display_name = display_name or self.input_override.display_name
                id = self.input_override.id
            super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced,
                             **newer_options)
            self.types = list(types)

        def get_io_type(self) -> str:
            names = [str(getattr(t, "io_type", t)) for t in self.types]
            if self.input_override is not None:
                names.insert(0, self.input_override.get_io_type())
            return ",".join(dict.fromkeys(names))

        def as_dict(self) -> dict[str, Any]:
            own = super().as_dict()
            return self.input_override.as_dict() | own if self.input_override is not None else own


# -- the schema --------------------------------------------------------------------------------------------------


@dataclass
class Schema:
    """Everything about a V3 node; ``define_schema`` returns one."""

    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list[Input] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    hidden: list[Hidden] = field(default_factory=list)
    description: str = ""
    search_aliases: list[str] = field(default_factory=list)
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False
    accept_all_inputs: bool = False
    price_badge: Any = None
    newer_options: dict[str, Any] = field(default_factory=dict)

    def finalize(self) -> Schema:
        """Check the schema and add what ComfyUI adds: output nodes get the prompt and workflow to embed, API
        nodes the account keys, and outputs without an id one made from their position and type."""
        if not isinstance(self.node_id, str) or not self.node_id:
            raise ValueError(f"io.Schema: node_id must be a non-empty string, got {self.node_id!r}")
        self.inputs, self.outputs, self.hidden = list(self.inputs or ()), list(self.outputs or ()), list(self.hidden or ())
        for kind, items, base in (("input", self.inputs, Input), ("output", self.outputs, Output)):
            for item in items:
                if not isinstance(item, base):
                    raise TypeError(f"node {self.node_id}: {kind} {item!r} is not an io.<Type>.{kind.title()}(...); "
                                    f"write e.g. io.Int.{kind.title()}(...)")
        for index, output in enumerate(self.outputs):
            if output.id is None:
                output.id = f"_{index}_{output.get_io_type()}_"
        inputs, outputs = [i.id for i in self.inputs], [o.id for o in self.outputs]
        # An input and an output may share an id (Easy-Use's "easy pixels" has a width input and output): ComfyUI
        # refused that once and allows it now.
        for kind, ids in (("input", inputs), ("output", outputs)):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"node {self.node_id}: {kind} id(s) {', '.join(duplicates)} declared twice")
        self.hidden = [h if isinstance(h, Hidden) else Hidden(h) for h in self.hidden]
        wanted = [Hidden.auth_token_comfy_org, Hidden.api_key_comfy_org] if self.is_api_node else []
        wanted += [Hidden.prompt, Hidden.extra_pnginfo] if self.is_output_node else []
        self.hidden += [h for h in wanted if h not in self.hidden]
        return self

    def input_types(self) -> dict[str, Any]:
        sections: dict[str, Any] = {"required": {}}
        for item in self.inputs:
            sections.setdefault("optional" if item.optional else "required", {})[item.id] = item.v1()
        if self.hidden:
            sections["hidden"] = {h.name: h.value for h in self.hidden}
        return sections


_schema_init = Schema.__init__


def _schema_init_accepting_newer_fields(self: Schema, *args: Any, **kwargs: Any) -> None:
    # A pack written for a newer ComfyUI may pass Schema fields this layer does not know; they are kept, unused.
    known = {f.name for f in fields(Schema)}
    newer = {k: kwargs.pop(k) for k in list(kwargs) if k not in known}
    _schema_init(self, *args, **kwargs)
    self.newer_options.update(newer)


Schema.__init__ = _schema_init_accepting_newer_fields  # type: ignore[method-assign]


class NodeOutput:
    """What ``execute`` returns: the output values in order, plus UI data, a subgraph to expand, or a block."""

    def __init__(self, *args: Any, ui: Any = None, expand: Mapping[str, Any] | None = None,
                 block_execution: str | None = None) -> None:
        self.args = args
        self.ui = ui
        self.expand = expand
        self.block_execution = block_execution

    @property
    def result(self) -> tuple[Any, ...] | None:
        return self.args if self.args else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeOutput:
        result = data.get("result") or ()
        if isinstance(result, ExecutionBlocker):
            return cls(block_execution=result.message)
        return cls(*result, ui=data.get("ui"), expand=data.get("expand"))

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


# -- the node class ----------------------------------------------------------------------------------------------


def _v1(name: str) -> property:
    """A V1 class attribute computed from the schema (``RETURN_TYPES`` ...), readable on the class."""

    def read(cls: Any) -> Any:
        if cls.__dict__.get("_abstract_base"):
            raise AttributeError(name)
        return _V1_ATTRIBUTES[name](cls.GET_SCHEMA())

    return property(read)


_V1_ATTRIBUTES: dict[str, Callable[[Schema], Any]] = {
    "RETURN_TYPES": lambda s: tuple(o.get_io_type() for o in s.outputs),
    "RETURN_NAMES": lambda s: tuple(o.display_name or o.get_io_type() for o in s.outputs),
    "OUTPUT_IS_LIST": lambda s: tuple(bool(o.is_output_list) for o in s.outputs),
    "OUTPUT_TOOLTIPS": lambda s: tuple(o.tooltip or None for o in s.outputs),
    "CATEGORY": lambda s: s.category,
    "DESCRIPTION": lambda s: s.description,
    "DISPLAY_NAME": lambda s: s.display_name,
    "OUTPUT_NODE": lambda s: s.is_output_node,
    "INPUT_IS_LIST": lambda s: s.is_input_list,
    "NOT_IDEMPOTENT": lambda s: s.not_idempotent,
    "DEPRECATED": lambda s: s.is_deprecated,
    "EXPERIMENTAL": lambda s: s.is_experimental,
    "API_NODE": lambda s: s.is_api_node,
}


class _ComfyNodeMeta(type):
    """Gives every ``ComfyNode`` subclass the V1 contract as class attributes, and ``cls.hidden`` per run."""

    RETURN_TYPES = _v1("RETURN_TYPES")
    RETURN_NAMES = _v1("RETURN_NAMES")
    OUTPUT_IS_LIST = _v1("OUTPUT_IS_LIST")
    OUTPUT_TOOLTIPS = _v1("OUTPUT_TOOLTIPS")
    CATEGORY = _v1("CATEGORY")
    DESCRIPTION = _v1("DESCRIPTION")
    DISPLAY_NAME = _v1("DISPLAY_NAME")
    OUTPUT_NODE = _v1("OUTPUT_NODE")
    INPUT_IS_LIST = _v1("INPUT_IS_LIST")
    NOT_IDEMPOTENT = _v1("NOT_IDEMPOTENT")
    DEPRECATED = _v1("DEPRECATED")
    EXPERIMENTAL = _v1("EXPERIMENTAL")
    API_NODE = _v1("API_NODE")

    @property
    def FUNCTION(cls) -> str:  # noqa: N802 - the V1 contract's name
        return "EXECUTE_NORMALIZED_ASYNC" if inspect.iscoroutinefunction(cls.execute) else "EXECUTE_NORMALIZED"

    @property
    def IS_CHANGED(cls) -> Callable[..., Any]:  # noqa: N802
        fingerprint = getattr(cls, "fingerprint_inputs", None)
        if fingerprint is None:
            raise AttributeError("IS_CHANGED")
        return fingerprint

    @property
    def VALIDATE_INPUTS(cls) -> Callable[..., Any]:  # noqa: N802
        validate = getattr(cls, "validate_inputs", None)
        if validate is None:
            raise AttributeError("VALIDATE_INPUTS")
        return validate

    @property
    def hidden(cls) -> HiddenHolder:
        """The hidden values of the node now running (empty outside a run)."""
        return _HIDDEN.get() or HiddenHolder()

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(name, bases, namespace, **kwargs)
        cls._schema_cache = None
        lazy = namespace.get("check_lazy_status")
        if lazy is not None:
            # The executor passes hidden values along with the inputs; a V3 node gets them in cls.hidden only.
            func = lazy.__func__ if isinstance(lazy, (classmethod, staticmethod)) else lazy
            is_static = isinstance(lazy, staticmethod)

            @functools.wraps(func)
            def check_lazy_status(klass: Any, **values: Any) -> Any:
                inputs, holder = klass._split_hidden(values)
                token = _HIDDEN.set(holder)
                try:
                    return func(**inputs) if is_static else func(klass, **inputs)
                finally:
                    _HIDDEN.reset(token)

            type.__setattr__(cls, "check_lazy_status", classmethod(check_lazy_status))


class ComfyNode(metaclass=_ComfyNodeMeta):
    """Base class of V3 nodes: override ``define_schema`` and ``execute`` (both classmethods).

    Optional classmethods: ``validate_inputs(**inputs) -> True | str``, ``fingerprint_inputs(**inputs)`` (a value
    that changes when the node must run again), ``check_lazy_status(**inputs) -> [names of lazy inputs needed]``.
    """

    _abstract_base = True

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError(f"{cls.__qualname__} must define the classmethod define_schema()")

    @classmethod
    def execute(cls, **kwargs: Any) -> NodeOutput:
        raise NotImplementedError(f"{cls.__qualname__} must define the classmethod execute()")

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802 - ComfyUI's name
        """The finalized schema (computed once per class; ``INPUT_TYPES`` asks afresh for current file lists)."""
        if cls.__dict__.get("_schema_cache") is None:
            cls._schema_cache = cls._fresh_schema()
        return cls._schema_cache

    @classmethod
    def _fresh_schema(cls) -> Schema:
        schema = cls.define_schema()
        if not isinstance(schema, Schema):
            raise TypeError(f"{cls.__qualname__}.define_schema() must return io.Schema(...), "
                            f"got {type(schema).__name__}")
        return schema.finalize()

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802
        return cls._fresh_schema().input_types()

    @classmethod
    def _split_hidden(cls, values: Mapping[str, Any]) -> tuple[dict[str, Any], HiddenHolder]:
        schema = cls.GET_SCHEMA()
        names = {h.name for h in schema.hidden}
        inputs = {k: v for k, v in values.items() if k not in names}
        hidden = {k: v for k, v in values.items() if k in names}
        if schema.is_input_list:  # list nodes get every input as a list; hidden values stay single, as in ComfyUI
            hidden = {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in hidden.items()}
        return inputs, HiddenHolder.from_dict(hidden)

    @classmethod
    def _result(cls, value: Any) -> Any:
        """What ``execute`` returned (a NodeOutput, a tuple, a V1 dict, a blocker or None) in the executor's shape."""
        schema = cls.GET_SCHEMA()
        if value is None:
            value = NodeOutput()
        elif isinstance(value, tuple):
            value = NodeOutput(*value)
        elif isinstance(value, dict):
            value = NodeOutput.from_dict(value)
        elif isinstance(value, ExecutionBlocker):
            return (value,) * len(schema.outputs)
        elif not isinstance(value, NodeOutput):
            raise TypeError(f"node {schema.node_id}: execute() must return io.NodeOutput(...), "
                            f"got {type(value).__name__}")
        if value.block_execution is not None:
            return (ExecutionBlocker(value.block_execution),) * len(schema.outputs)
        if value.expand is not None and not schema.enable_expand:
            raise ValueError(f"node {schema.node_id} returned a subgraph to expand but its schema does not say "
                             f"enable_expand=True")
        result: dict[str, Any] = {"result": tuple(value.args)}
        if value.ui is not None:
            result["ui"] = value.ui.as_dict() if hasattr(value.ui, "as_dict") else dict(value.ui)
        if value.expand is not None:
            result["expand"] = value.expand
        return result

    def EXECUTE_NORMALIZED(self, **values: Any) -> Any:  # noqa: N802
        cls = type(self)
        inputs, holder = cls._split_hidden(values)
        token = _HIDDEN.set(holder)
        try:
            return cls._result(cls.execute(**inputs))
        finally:
            _HIDDEN.reset(token)

    async def EXECUTE_NORMALIZED_ASYNC(self, **values: Any) -> Any:  # noqa: N802
        cls = type(self)
        inputs, holder = cls._split_hidden(values)
        token = _HIDDEN.set(holder)
        try:
            return cls._result(await cls.execute(**inputs))
        finally:
            _HIDDEN.reset(token)


def __getattr__(name: str) -> Any:
    # Newer V3 features (io.Autogrow, io.MatchType, io.DynamicCombo...): the pack loads, the node that uses one
    # fails naming it, and `comfy plugins` lists it for the pack.
    if name.startswith("__"):
        raise AttributeError(name)
    full = f"comfy_api.latest.io.{name}"
    pack = hook._pack_of(sys._getframe(1))
    with hook._lock:
        hook._missing[pack].add(full)
    raise hook.HearthDoesNotProvide(f"Hearth does not provide {full} (used by pack {pack})")
