"""The wire's decoder treats every frame as hostile: malformed bytes, lying array headers and descriptors that are
not sealed memfds are WireError, never a crash, a read outside a mapping or a leaked descriptor."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import struct

import pytest
import torch

from hearth.sandbox import wire


def codec() -> wire.Codec:
    def other(value):
        raise TypeError(f"a {type(value).__name__} cannot cross")

    def handle(tag, fields):
        return (tag, fields)

    return wire.Codec(other, handle)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_random_and_truncated_frames_are_wire_errors():
    c = codec()
    good, fds = c.encode({"a": [1, 2.5, "x", b"y", (None, True)], 7: {"n": 2**100}})
    assert not fds
    assert c.decode(bytes(good), []) == {"a": [1, 2.5, "x", b"y", (None, True)], 7: {"n": 2**100}}
    rng = random.Random(16)
    for cut in range(len(good)):
        with pytest.raises(wire.WireError):
            c.decode(bytes(good[:cut]), [])
    for _ in range(2000):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        try:
            c.decode(junk, [])
        except wire.WireError:
            pass


def test_nesting_and_sizes_are_bounded():
    c = codec()
    deep = b"l\x01\x00\x00\x00" * (wire.MAX_DEPTH + 5) + b"N"
    with pytest.raises(wire.WireError, match="nested deeper"):
        c.decode(deep, [])
    with pytest.raises(wire.WireError, match="longer than the message"):
        c.decode(b"l\xff\xff\xff\x7f", [])
    with pytest.raises(wire.WireError):
        c.decode(b"I" + struct.pack("<I", 6000) + b"9" * 6000, [])
    with pytest.raises(ValueError, match="nested deeper"):
        value: list = []
        for _ in range(wire.MAX_DEPTH + 5):
            value = [value]
        c.encode(value)


def _array_frame(fd_index: int, size: int, shape=(4,), strides=(1,), offset=0) -> bytes:
    out = bytearray()
    wire._array_header(out, wire._TORCH, "float32", shape, strides, offset, size, fd_index)
    return bytes(out)


def test_an_array_in_a_file_that_is_not_a_sealed_memfd_is_refused_and_closed():
    c = codec()
    before = open_fds()
    plain = os.memfd_create("unsealed")
    os.ftruncate(plain, 4096)
    with pytest.raises(wire.WireError, match="not sealed against writing"):
        c.decode(_array_frame(0, 4096), [plain])
    writable = os.memfd_create("writable", os.MFD_ALLOW_SEALING)
    os.ftruncate(writable, 4096)
    fcntl.fcntl(writable, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    with pytest.raises(wire.WireError, match="not sealed against writing"):  # the sender could still change it
        c.decode(_array_frame(0, 4096), [writable])
    read_end, write_end = os.pipe()
    with pytest.raises(wire.WireError, match="not a sealed memfd"):
        c.decode(_array_frame(0, 4096), [read_end])
    os.close(write_end)
    assert open_fds() == before  # the decoder closed what it was given


def test_an_array_that_reaches_past_its_memfd_or_names_a_missing_descriptor_is_refused():
    c = codec()
    sealed = wire._new_memfd(64)
    wire._seal(sealed)
    with pytest.raises(wire.WireError, match="claims 4096 bytes of a memfd that holds 64"):
        c.decode(_array_frame(0, 4096), [os.dup(sealed)])
    with pytest.raises(wire.WireError, match="outside its shared memory"):
        c.decode(_array_frame(0, 64, shape=(100,)), [os.dup(sealed)])
    with pytest.raises(wire.WireError, match="outside its shared memory"):
        c.decode(_array_frame(0, 64, shape=(4,), offset=60), [os.dup(sealed)])
    with pytest.raises(wire.WireError, match="names descriptor 3"):
        c.decode(_array_frame(3, 64), [os.dup(sealed)])
    value = c.decode(_array_frame(0, 64, shape=(4,)), [os.dup(sealed)])
    assert value.shape == (4,) and value.dtype == torch.float32
    os.close(sealed)


def test_frames_cross_a_socket_with_their_descriptors():
    left, right = socket.socketpair()
    a, b = wire.Channel(left), wire.Channel(right)
    c = codec()
    body, fds = c.encode({"t": torch.arange(10.0), "s": "x" * 100000})
    a.send(body, fds)
    for fd in fds:
        os.close(fd)
    got, got_fds = b.recv()
    value = c.decode(got, got_fds)
    assert torch.equal(value["t"], torch.arange(10.0)) and len(value["s"]) == 100000
    a.close()
    with pytest.raises(wire.Closed):
        b.recv()
    b.close()
