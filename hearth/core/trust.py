"""Where a pack runs: in Hearth's own process, or isolated in a pack host -- and the one short reason why.

The policy is data (:class:`TrustPolicy`, part of :class:`hearth.core.runtime.RuntimeOptions`); the decision is one
pure function (:meth:`TrustPolicy.placement`) that the plugin manager asks for Hearth-format packs and the ComfyUI
compatibility loader asks for custom-node packs. The user's side (``comfy trust``, the config file, the registry's
publisher trust, ``--isolation``) lives in :mod:`hearth.registry.trust`, which builds the policy for a command.

The order of the rules, first match wins:

1. a first-party plugin runs in-process (it is Hearth's own code);
2. a pack with its own dependency layer runs in a host whatever the mode (its packages cannot join this process);
3. ``--isolation off`` runs everything else in-process, ``--isolation all`` runs everything else in a host;
4. ``--isolation untrusted`` (the CLI's default) runs in-process the packs the user trusts by name and, where the
   user opted in, the packs whose publisher their registry marks trusted; every other pack runs in a host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MODES = ("untrusted", "all", "off")
ENV_ISOLATION = "HEARTH_ISOLATION"  # the CLI's default mode; --isolation overrides it

# The placement words `comfy plugins` shows (PluginRecord.placement).
IN_PROCESS = "in-process"
PACK_HOST = "pack host"

WHY_FIRST_PARTY = "first-party plugin"
WHY_TRUSTED = "trusted by you (comfy trust)"
WHY_NOT_TRUSTED = "not trusted"
WHY_ALL = "--isolation all"
WHY_OFF = "--isolation off"
WHY_OWN_LAYER = "has its own dependency layer"


def canonical_pack_name(name: str) -> str:
    """A pack name as trust lists compare it: lower-case, runs of ``-``, ``_`` and ``.`` as one ``-`` (PEP 503).

    >>> canonical_pack_name("ComfyUI_Evil.Pack")
    'comfyui-evil-pack'
    """
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(canonical_pack_name(n) for n in names if n and n.strip())


def why_publisher(registry: str) -> str:
    return f"publisher trusted by {registry}"


def isolation_refusal(pack: str, reason: str, *, own_layer: bool = False) -> str:
    """The PluginRecord error of a pack that must run isolated on a machine that cannot isolate it. A pack with its
    own dependency layer has no unisolated way out: its packages cannot join Hearth's process."""
    if own_layer:
        return (f"pack {pack!r} must run in a pack host but this machine cannot isolate it ({reason}); it has its "
                f"own dependency layer, which only a pack host can run: uninstall it or a pack whose requirements "
                f"conflict with it")
    return (f"pack {pack!r} must run in a pack host but this machine cannot isolate it ({reason}); run it "
            f"unisolated at your own risk with --isolation off (or comfy trust {pack})")


def hearth_format_refusal(pack: str) -> str:
    """The PluginRecord error of an untrusted Hearth-format (entry point) pack: it cannot run in a pack host yet."""
    return (f"Hearth-format pack {pack} runs only in-process: trust it with `comfy trust {pack}` or use "
            f"--isolation off")


class TrustModeError(ValueError):
    """An isolation mode that is not one of :data:`MODES`; the message names the value and where it came from."""


def check_mode(mode: str, source: str = "--isolation") -> str:
    value = mode.strip().lower()
    if value not in MODES:
        raise TrustModeError(f"{source}: {mode!r} is not an isolation mode; use one of {', '.join(MODES)} "
                             f"(untrusted: packs you have not trusted run isolated; all: every pack but Hearth's "
                             f"own runs isolated; off: every pack runs in Hearth's process, at your own risk)")
    return value


@dataclass(frozen=True)
class Placement:
    """Where one pack runs and why (one short phrase for ``comfy plugins``)."""

    isolated: bool  # True: the pack runs in a pack host
    why: str
    network: bool = False  # the user allowed this pack network access by name

    @property
    def where(self) -> str:
        """``"pack host"`` or ``"in-process"``, as ``comfy plugins`` shows it."""
        return PACK_HOST if self.isolated else IN_PROCESS


@dataclass(frozen=True)
class TrustPolicy:
    """Which packs run in a pack host: the mode, the user's trusted and network-allowed packs, publisher trust.

    :param mode: ``"untrusted"``, ``"all"`` or ``"off"``; the library's default is ``"off"`` (a Runtime built
        without a policy runs every pack in-process, as before isolation existed); the CLI's is ``"untrusted"``.
    :param trusted: pack names the user trusts (``comfy trust PACK``): in-process under ``untrusted``.
    :param network: pack names the user allowed the network (``comfy trust PACK --network``).
    :param trusted_publishers: ``(publisher, registry)`` pairs whose packs run in-process under ``untrusted``:
        the registries' publisher trust, present only where the user opted in (``comfy trust --publishers on``).
    :param publisher_packs: ``(pack, publisher, registry)`` for installed packs whose registry marked their
        publisher trusted when they were installed; present only where the user opted in.

    Names are kept canonical (:func:`canonical_pack_name`) whatever the caller passes.
    """

    mode: str = "off"
    trusted: frozenset[str] = frozenset()
    network: frozenset[str] = frozenset()
    trusted_publishers: frozenset[tuple[str, str]] = frozenset()
    publisher_packs: frozenset[tuple[str, str, str]] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", check_mode(self.mode, "TrustPolicy(mode=...)"))
        object.__setattr__(self, "trusted", _names(self.trusted))
        object.__setattr__(self, "network", _names(self.network))
        object.__setattr__(self, "trusted_publishers", frozenset((p, r) for p, r in self.trusted_publishers))
        object.__setattr__(self, "publisher_packs", frozenset(
            (canonical_pack_name(pack), publisher, registry) for pack, publisher, registry in self.publisher_packs))

    @property
    def isolates(self) -> bool:
        """Whether any pack that is neither first-party nor layered may be put in a pack host."""
        return self.mode != "off"

    def is_trusted(self, pack: str) -> bool:
        return canonical_pack_name(pack) in self.trusted

    def publisher_registry(self, pack: str, publisher: str | None = None) -> str | None:
        """The registry whose publisher trust covers ``pack`` (or ``publisher``), or ``None``."""
        key = canonical_pack_name(pack)
        for name, _publisher, registry in sorted(self.publisher_packs):
            if name == key:
                return registry
        if publisher:
            for known, registry in sorted(self.trusted_publishers):
                if known == publisher:
                    return registry
        return None

    def placement(self, pack: str, *, first_party: bool = False, publisher: str | None = None,
                  own_layer: bool = False) -> Placement:
        """Where ``pack`` runs and why (see the module's docstring for the order of the rules).

        :param pack: the pack's name (its folder name for a ComfyUI pack, its distribution or entry-point name for
            a Hearth-format one); compared canonically.
        :param first_party: the pack is one of Hearth's own plugins.
        :param publisher: the pack's publisher id, when the caller knows it (matched against
            ``trusted_publishers``); the install records in ``publisher_packs`` are consulted either way.
        :param own_layer: the pack has its own dependency layer (it cannot run in-process).
        """
        network = canonical_pack_name(pack) in self.network
        if first_party:
            return Placement(False, WHY_FIRST_PARTY, network)
        if own_layer:
            return Placement(True, WHY_OWN_LAYER, network)
        if self.mode == "off":
            return Placement(False, WHY_OFF, network)
        if self.mode == "all":
            return Placement(True, WHY_ALL, network)
        if self.is_trusted(pack):
            return Placement(False, WHY_TRUSTED, network)
        registry = self.publisher_registry(pack, publisher)
        if registry is not None:
            return Placement(False, why_publisher(registry), network)
        return Placement(True, WHY_NOT_TRUSTED, network)
