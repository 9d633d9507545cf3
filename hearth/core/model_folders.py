"""Model folders: where each kind of model file (checkpoints, vae, loras...) is looked up, in ComfyUI's layout.

A :class:`ModelFolders` maps a folder kind to an ordered list of directories and the file extensions it lists.
It starts from one base folder (``--models-dir``, default ``./models``) laid out as ComfyUI's ``models/`` is, and
takes more directories from ComfyUI's ``extra_model_paths.yaml`` (``--extra-model-paths-config``), so an existing
ComfyUI or A1111 model folder works as it is::

    comfyui:                      # any section name
        base_path: ~/ComfyUI/     # relative paths below are under it; itself relative to the YAML file
        is_default: true          # optional: these folders come first (searched first)
        checkpoints: models/checkpoints/
        loras: |                  # several folders, one per line
            models/loras
            models/LyCORIS

Loader nodes list a kind (``list("checkpoints")``: names relative to their folder, ``/``-separated, recursive)
for their combo inputs, and resolve the chosen name with ``find``. Each :class:`~hearth.core.runtime.Runtime` owns
one, built from its options; nodes read the current Runtime's with :func:`model_folders`.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MODEL_EXTENSIONS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft", ".gguf"})

# ComfyUI's folder kinds, each with the subfolders of the base folder it reads (in order) and its extensions.
_STANDARD: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "checkpoints": (("checkpoints",), MODEL_EXTENSIONS),
    "configs": (("configs",), frozenset({".yaml"})),
    "loras": (("loras",), MODEL_EXTENSIONS),
    "vae": (("vae",), MODEL_EXTENSIONS),
    "text_encoders": (("text_encoders", "clip"), MODEL_EXTENSIONS),
    "diffusion_models": (("unet", "diffusion_models"), MODEL_EXTENSIONS),
    "clip_vision": (("clip_vision",), MODEL_EXTENSIONS),
    "style_models": (("style_models",), MODEL_EXTENSIONS),
    "embeddings": (("embeddings",), MODEL_EXTENSIONS),
    "diffusers": (("diffusers",), frozenset()),  # model folders, not files: nothing Hearth loads lists them yet
    "vae_approx": (("vae_approx",), MODEL_EXTENSIONS),
    "controlnet": (("controlnet", "t2i_adapter"), MODEL_EXTENSIONS),
    "gligen": (("gligen",), MODEL_EXTENSIONS),
    "upscale_models": (("upscale_models",), MODEL_EXTENSIONS),
    "latent_upscale_models": (("latent_upscale_models",), MODEL_EXTENSIONS),
    "hypernetworks": (("hypernetworks",), MODEL_EXTENSIONS),
    "photomaker": (("photomaker",), MODEL_EXTENSIONS),
    "classifiers": (("classifiers",), MODEL_EXTENSIONS),
    "model_patches": (("model_patches",), MODEL_EXTENSIONS),
    "audio_encoders": (("audio_encoders",), MODEL_EXTENSIONS),
    # Not in ComfyUI's own list: AnimateDiff-Evolved adds it, and its users' motion modules live there.
    "animatediff_models": (("animatediff_models",), MODEL_EXTENSIONS),
}
# Older names ComfyUI still accepts in workflows and YAML files; they share the list of the newer name.
ALIASES = {"clip": "text_encoders", "unet": "diffusion_models"}


class ModelFileNotFound(FileNotFoundError):
    """A model name that no folder of its kind holds; the message names the folders searched and close names."""


class UnknownFolderKind(KeyError):
    """A folder kind nobody declared; the message lists the known kinds."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ExtraPath:
    """One directory from an ``extra_model_paths.yaml``: its kind, where it is, whether it goes first."""

    kind: str
    path: Path
    is_default: bool = False
    section: str = ""


def read_extra_model_paths(config: str | Path) -> list[ExtraPath]:
    """The directories an ``extra_model_paths.yaml`` file names, in file order.

    ``base_path`` expands ``$VARS`` and ``~`` and is taken relative to the YAML file's folder; each other key is a
    folder kind whose value is one path or several, one per line, relative to ``base_path`` (or, without one, to
    the YAML file's folder). Empty sections are skipped. Kinds need not be known: a pack may read its own.

    :raises ValueError: naming the file and the section that is not a mapping of kinds to paths.
    """
    import yaml  # deferred: only a config file needs it

    config = Path(config)
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{config}: cannot read the extra model paths file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{config}: not valid YAML: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ValueError(f"{config}: expected sections (name: {{base_path: ..., checkpoints: ...}}), got "
                         f"{type(data).__name__}")
    here = config.resolve().parent
    found = []
    for section, entries in data.items():
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise ValueError(f"{config}: section {section!r} must map folder kinds to paths, got "
                             f"{type(entries).__name__}")
        entries = dict(entries)
        base = entries.pop("base_path", None)
        is_default = bool(entries.pop("is_default", False))
        if base is not None:
            base = here / os.path.expanduser(os.path.expandvars(str(base)))
        for kind, value in entries.items():
            if not isinstance(value, (str, Path)):
                raise ValueError(f"{config}: {section}.{kind} must be a path or several paths, one per line; "
                                 f"got {value!r}")
            for line in str(value).splitlines():
                line = line.strip()
                if line:
                    path = (base or here) / os.path.expanduser(os.path.expandvars(line))
                    found.append(ExtraPath(str(kind), Path(os.path.normpath(path)), is_default, str(section)))
    return found


class ModelFolders:
    """Folder kinds -> ordered directories and extensions, under one base models folder.

    :param base: the base folder (``--models-dir``); each standard kind reads its subfolders of it.
    :param extra_configs: ``extra_model_paths.yaml`` files whose directories are added, in order.
    """

    def __init__(self, base: str | Path = "models", extra_configs: Iterable[str | Path] = ()) -> None:
        self.base = Path(base)
        self._folders: dict[str, list[Path]] = {}
        self._extensions: dict[str, frozenset[str]] = {}
        for kind, (subfolders, extensions) in _STANDARD.items():
            self._folders[kind] = [self.base / sub for sub in subfolders]
            self._extensions[kind] = extensions
        for config in extra_configs:
            for extra in read_extra_model_paths(config):
                self.add(extra.kind, extra.path, first=extra.is_default)

    def _kind(self, kind: str) -> str:
        kind = ALIASES.get(kind, kind)
        if kind not in self._folders:
            raise UnknownFolderKind(f"unknown model folder kind {kind!r}; known: {', '.join(self.kinds())}")
        return kind

    def kinds(self) -> list[str]:
        return sorted(self._folders)

    def add(self, kind: str, path: str | Path, *, first: bool = False,
            extensions: Iterable[str] | None = None) -> None:
        """Add a directory to a kind (a new kind lists the usual model extensions unless told otherwise).

        ``first`` puts it before the others (``is_default`` in the YAML file): found first, listed first.
        """
        kind = ALIASES.get(kind, kind)
        folders = self._folders.setdefault(kind, [])
        if kind not in self._extensions or extensions is not None:
            self._extensions[kind] = frozenset(e.lower() for e in extensions) if extensions else MODEL_EXTENSIONS
        path = Path(path)
        if path in folders:
            folders.remove(path)
        if first:
            folders.insert(0, path)
        else:
            folders.append(path)

    def folders(self, kind: str) -> list[Path]:
        """The directories of a kind, in search order (some may not exist)."""
        return list(self._folders[self._kind(kind)])

    def extensions(self, kind: str) -> frozenset[str]:
        return self._extensions[self._kind(kind)]

    def list(self, kind: str) -> list[str]:
        """Every file of a kind: names relative to their folder with ``/``, sorted; a name found in two folders
        is listed once (the first folder's file is the one :meth:`find` returns)."""
        extensions = self.extensions(kind)
        names: set[str] = set()
        for root in self.folders(kind):
            for folder, dirs, files in os.walk(root, followlinks=True):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in files:
                    if Path(name).suffix.lower() in extensions:
                        names.add((Path(folder) / name).relative_to(root).as_posix())
        return sorted(names)

    def find(self, kind: str, name: str) -> Path:
        """The file ``name`` (as :meth:`list` gives it) of a kind, from the first folder that has it.

        :raises ModelFileNotFound: naming the kind, the name, every folder searched and the closest names.
        """
        kind = self._kind(kind)
        relative = PurePosixPath(str(name).replace("\\", "/"))
        if not name or relative.is_absolute() or ".." in relative.parts:
            raise ModelFileNotFound(f"{kind} name {name!r} must be a file name inside a {kind} folder, as the "
                                    f"list offers it (no absolute path, no '..')")
        for root in self.folders(kind):
            candidate = root / relative
            if candidate.is_file():
                return candidate
        available = self.list(kind)
        close = difflib.get_close_matches(str(relative), available, n=3, cutoff=0.5)
        searched = ", ".join(str(p) for p in self.folders(kind))
        hint = (f"did you mean {', '.join(close)}?" if close else
                f"{len(available)} file(s) there" + (f": {', '.join(available[:5])}" if available else ""))
        raise ModelFileNotFound(f"{kind} file {name!r} not found in {searched} ({hint}); put it in one of those "
                                f"folders, or pass --models-dir / --extra-model-paths-config")

    def describe(self) -> dict[str, list[str]]:
        """Kind -> folders as strings, for status output and the frontend's model library."""
        return {kind: [str(p) for p in self._folders[kind]] for kind in self.kinds()}


def model_folders() -> ModelFolders:
    """The current Runtime's model folders (``--models-dir``, ``--extra-model-paths-config``).

    Outside every Runtime: a fresh ``ModelFolders()`` for ``./models`` on each call. Reading it is what a library
    user expects; a folder added to it (ComfyUI's ``folder_paths.add_model_folder_path``) is forgotten at once
    rather than leaking into the next Runtime.
    """
    from hearth.core.runtime import current_runtime  # deferred: the runtime module imports this one

    runtime = current_runtime()
    return runtime.model_folders if runtime is not None else ModelFolders()


@dataclass(frozen=True)
class TinyModel:
    """A tiny model a plugin can write for tests and demos (the ``register_tiny_models`` hook).

    :param kind: the folder kind it belongs in (``checkpoints``, ``vae``, ``embeddings``...).
    :param filename: its file name there under ``make-tiny all``, the name example workflows use.
    :param write: ``write(path, seed) -> None`` writes the file; the same seed always gives the same bytes.
    :param description: one line for ``comfy models make-tiny --help`` and its output.
    :param write_for: ``write_for(base, path, seed) -> None`` writes a model made to fit the existing model file
        ``base`` (``make-tiny lora --base FILE``); None when the model does not depend on another.
    :param parts: for a bundle, the names of the tiny models it is made of (a video model's diffusion model,
        text encoder and VAE): ``make-tiny NAME --out DIR`` writes them into DIR laid out as a models folder, and
        ``make-tiny all`` writes the parts rather than the bundle. A bundle's ``kind``, ``filename`` and ``write``
        are not used.
    :param base: the name of the tiny model (another plugin's, perhaps) this one is made to fit, with
        ``write_for``: where both are written together (``make-tiny all``), the base is written first and this one
        made from its file, so a plugin needs no import of the plugin that offers the base.
    """

    kind: str
    filename: str
    write: Callable[[Path, int], None]
    description: str = ""
    write_for: Callable[[Path, Path, int], None] | None = None
    parts: tuple[str, ...] = ()
    base: str = ""


def write_tiny_model(models: Mapping[str, TinyModel], name: str, path: str | Path, seed: int = 0, *,
                     models_dir: str | Path | None = None) -> None:
    """Write the tiny model ``name`` of ``models`` to ``path``.

    A model made to fit another (``base`` with ``write_for``) is made from the base's file: the one already in
    ``models_dir`` when there is one, else a base written for the purpose into a temporary folder.
    """
    model, path = models[name], Path(path)
    base = models.get(model.base) if model.base and model.write_for is not None else None
    if base is None:
        model.write(path, seed)
        return
    if models_dir is not None:
        existing = ModelFolders(models_dir).folders(base.kind)[0] / base.filename
        if existing.is_file():
            model.write_for(existing, path, seed)
            return
    with tempfile.TemporaryDirectory() as folder:
        base_path = Path(folder) / base.filename  # its name goes into what is made from it (a LoRA's metadata)
        write_tiny_model(models, model.base, base_path, seed)
        model.write_for(base_path, path, seed)


def write_tiny_models(models_dir: str | Path, models: Mapping[str, TinyModel], seed: int = 0, *,
                      bases: Mapping[str, TinyModel] | None = None) -> list[tuple[str, Path]]:
    """Write tiny models into their kinds' standard subfolders of ``models_dir`` (``make-tiny all``).

    Bundles (models with ``parts``) are skipped: their parts are tiny models of their own, written when listed.
    A model made to fit another (``base``) is written after the others, from its base's file when that is among
    them; ``bases`` lists more tiny models a base may be found in (every installed one, for ``make-tiny NAME``).
    """
    folders = ModelFolders(models_dir)
    known = {**(bases or {}), **models}
    written = []
    # Stable: the order given, models made to fit another listed one last (their base is written by then).
    for name, model in sorted(models.items(), key=lambda item: item[1].base in models):
        if model.parts:
            continue
        path = folders.folders(model.kind)[0] / model.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tiny_model(known, name, path, seed, models_dir=models_dir)
        written.append((name, path))
    return written
