"""Placing a model on a device: whole when it fits, else part resident and the rest streamed in per forward.

The unit of placement is a module that owns tensors directly (a Linear, a Conv, a norm, or a parent with its own
parameters). Units that fit the budget move to the device once; the others stay on the offload device and a forward
pre-hook copies their tensors in just before the unit runs, a forward hook puts the offload tensors back right
after. The model's arithmetic is unchanged, so a partially offloaded model gives the same output as a resident one,
only slower.

Only units whose tensors are used inside their own ``forward`` can stream. torch's standard layers (Linear, Conv,
Embedding, the norms) are such units; any other module that owns tensors (a root ``pos_embed``, a custom block)
stays resident whatever the budget, because a parent may read its tensors without calling it. A plugin marks
its own layer class (or one instance) with ``hearth_streamable = True``, or ``False`` for a standard layer whose
``weight`` a parent reads directly.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

STREAMABLE = (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding, nn.GroupNorm, nn.LayerNorm,
              nn.modules.batchnorm._NormBase)


def streamable(module: nn.Module) -> bool:
    """Whether a unit may stay on the offload device and be copied in for each of its forwards."""
    return bool(getattr(module, "hearth_streamable", isinstance(module, STREAMABLE)))


@dataclass(frozen=True)
class Unit:
    """A module that owns tensors directly, with the bytes those tensors take."""

    name: str
    nbytes: int


def _own_tensors(module: nn.Module) -> list[tuple[str, dict[str, Any], torch.Tensor]]:
    found = []
    for name, param in module._parameters.items():
        if param is not None:
            found.append((name, module._parameters, param))
    for name, buf in module._buffers.items():
        if buf is not None:
            found.append((name, module._buffers, buf))
    return found


def units(module: nn.Module) -> list[tuple[str, nn.Module, int]]:
    """Every module owning tensors directly, in registration order (roughly the order a forward runs them)."""
    found = []
    seen: set[int] = set()
    for name, sub in module.named_modules():
        nbytes = 0
        for _, _, tensor in _own_tensors(sub):
            if id(tensor) not in seen:  # a tied weight counts toward the first module that owns it
                seen.add(id(tensor))
                nbytes += tensor.numel() * tensor.element_size()
        if nbytes:
            found.append((name, sub, nbytes))
    return found


def _move(module: nn.Module, device: torch.device) -> None:
    # Swapping .data keeps every Parameter object (and anything holding it) valid, as Module.to does.
    for name, holder, tensor in _own_tensors(module):
        if tensor.device != device:
            if isinstance(tensor, nn.Parameter):
                tensor.data = tensor.data.to(device)
            else:
                holder[name] = tensor.to(device)


@dataclass
class Placement:
    """Where one model's tensors live while it is loaded. Holds no strong reference to the model.

    Made by :func:`place`; :meth:`remove` puts every tensor back on the offload device and takes the hooks off.
    """

    device: torch.device
    offload_device: torch.device
    resident: list[Unit] = field(default_factory=list)
    streamed: list[Unit] = field(default_factory=list)
    streams: int = 0  # how many times a streamed unit was copied in; a test and the status report read it
    _module: Any = None  # weakref.ref to the root module
    _handles: list[RemovableHandle] = field(default_factory=list, repr=False)
    _parked: dict[int, list[tuple[str, dict[str, Any], torch.Tensor]]] = field(default_factory=dict, repr=False)

    @property
    def resident_bytes(self) -> int:
        return sum(u.nbytes for u in self.resident)

    @property
    def streamed_bytes(self) -> int:
        return sum(u.nbytes for u in self.streamed)

    @property
    def partial(self) -> bool:
        return bool(self.streamed)

    def _stream_in(self, module: nn.Module, args: Any) -> None:
        parked = []
        for name, holder, tensor in _own_tensors(module):
            # copy=True: even when the "device" is the CPU (tests, CPU-only budgets) the unit runs on a copy,
            # so streaming is observable and never aliases the offload tensor.
            moved = tensor.data.to(self.device, copy=True)
            parked.append((name, holder, tensor.data if isinstance(tensor, nn.Parameter) else tensor))
            if isinstance(tensor, nn.Parameter):
                tensor.data = moved
            else:
                holder[name] = moved
        self._parked[id(module)] = parked
        self.streams += 1

    def _stream_out(self, module: nn.Module, args: Any, output: Any) -> None:
        for name, holder, offloaded in self._parked.pop(id(module), ()):
            current = holder[name]
            if isinstance(current, nn.Parameter):
                current.data = offloaded
            else:
                holder[name] = offloaded

    def detach(self) -> nn.Module | None:
        """Take the hooks off, leaving every tensor where it is; returns the module if it is still alive."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        module = self._module() if self._module is not None else None
        if module is not None and self._parked:
            for sub in module.modules():
                self._stream_out(sub, None, None)  # a forward that raised leaves its unit streamed in
        self._parked.clear()
        self.resident, self.streamed = [], []
        return module

    def remove(self) -> None:
        """Take the hooks off and move every tensor of the model to the offload device."""
        module = self.detach()
        if module is not None:
            for sub in module.modules():
                _move(sub, self.offload_device)


def place(module: nn.Module, device: torch.device, offload_device: torch.device, budget: int | None) -> Placement:
    """Move as much of ``module`` to ``device`` as ``budget`` bytes allow (all of it when ``budget`` is None).

    Units that cannot stream go resident first, whatever the budget; then each streamable unit, in registration
    order, goes resident if it still fits, and streams otherwise. Tensors already where they belong do not move,
    so placing a detached model again with a larger or smaller budget moves only the difference.
    """
    placement = Placement(device, offload_device, _module=weakref.ref(module))
    found = units(module)
    fixed = {id(sub) for _, sub, _ in found if budget is None or not streamable(sub)}
    room = None if budget is None else budget - sum(n for _, sub, n in found if id(sub) in fixed)
    for name, sub, nbytes in found:
        if id(sub) in fixed or (room is not None and nbytes <= room):
            _move(sub, device)
            placement.resident.append(Unit(name, nbytes))
            if room is not None and id(sub) not in fixed:
                room -= nbytes
        else:
            _move(sub, offload_device)
            placement.streamed.append(Unit(name, nbytes))
            # The hooks are bound methods of the placement, which holds the module only weakly: the module's
            # memory is freed by reference counting alone when the last user drops it.
            placement._handles.append(sub.register_forward_pre_hook(placement._stream_in))
            placement._handles.append(sub.register_forward_hook(placement._stream_out, always_call=True))
    return placement
