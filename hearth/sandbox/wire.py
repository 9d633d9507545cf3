"""The pack host's wire: frames over a unix stream socket, a closed typed encoding, and tensors through shared memory.

A frame is ``<u32 body length><u32 descriptor count>`` then the body, sent with one ``sendmsg`` that carries the
frame's descriptors (``SCM_RIGHTS``) on its first byte. The body is one value in this encoding (one tag byte, then
the payload, little-endian):

``N`` None, ``T``/``F`` bools, ``i`` int64, ``I`` bigger int (decimal text), ``f`` float64, ``s`` str (UTF-8),
``b`` bytes, ``l`` list, ``t`` tuple, ``d`` dict (key, value pairs; keys any encodable value), ``A`` an array
(torch tensor or numpy array) in shared memory, ``H`` a handle to a value that stays in the pack host, ``R`` a
handle to a value that stays in the parent.

Nothing else crosses; nothing is ever pickled. Decoding checks every length, the nesting depth and every descriptor
against the frame, so a hostile host cannot make the parent run code, allocate without bound, or read outside a
mapping.

**Arrays.** An array's bytes live in a ``memfd`` that its sender fills, stops mapping, and seals against writing,
shrinking and growing (``F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW``); the receiver checks the seals before mapping.
So the bytes can never change under the receiver: a host cannot rewrite an output after returning it (Hearth may
have cached it, or handed it to a trusted node), nor truncate the file (a SIGBUS in the parent). The receiver maps
the file privately (``MAP_PRIVATE``: copy-on-write) and wraps the mapping with ``torch.frombuffer`` /
``numpy.frombuffer``: the data is not copied, and a page the receiver writes to becomes its own. Every mapping
made here is remembered (by address and by inode) for as long as something uses it, so an array that lives in one
of these memfds and whose pages this side never wrote to (``/proc/self/pagemap`` says) goes back *by reference*:
the same descriptor, its offset and strides, no copy; a receiver that already maps that inode reuses its mapping.
Anything else is copied once, straight into a fresh memfd (any strides, from a GPU too).

torch and numpy are imported only when an array crosses (they are never needed to start a host for a plain pack).
"""

from __future__ import annotations

import array
import errno
import fcntl
import mmap
import os
import socket
import struct
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

MAX_FRAME = 1 << 30  # one frame's body (arrays travel outside it)
MAX_FDS = 253  # SCM_MAX_FD
MAX_DEPTH = 200
_HEADER = struct.Struct("<II")
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class WireError(Exception):
    """The other side broke the protocol (or went away): the connection cannot be used any more."""


class Closed(WireError):
    """The other side closed the connection."""


# -- frames -------------------------------------------------------------------------------------------------------


class Channel:
    """One end of the socket: whole frames in and out. Sending is thread-safe; receiving is one thread's job."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()
        self._fd_space = socket.CMSG_SPACE(MAX_FDS * 4)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, body: bytes | bytearray, fds: list[int] = ()) -> None:
        if len(body) > MAX_FRAME:
            raise WireError(f"a message of {len(body)} bytes is larger than the limit of {MAX_FRAME}")
        if len(fds) > MAX_FDS:
            raise WireError(f"a message may carry at most {MAX_FDS} arrays, this one has {len(fds)}")
        data = memoryview(_HEADER.pack(len(body), len(fds)) + bytes(body))
        with self._send_lock:
            try:
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
                sent = self.sock.sendmsg([data], ancillary)
                while sent < len(data):
                    sent += self.sock.send(data[sent:])
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise Closed(str(exc)) from None

    def recv(self) -> tuple[bytes, list[int]]:
        """One frame: its body and the descriptors that came with it (the caller owns and closes them)."""
        fds: list[int] = []
        header = b""
        try:
            while len(header) < _HEADER.size:
                chunk, ancdata, flags, _ = self.sock.recvmsg(_HEADER.size - len(header), self._fd_space,
                                                             socket.MSG_CMSG_CLOEXEC)
                for level, kind, payload in ancdata:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        got = array.array("i")
                        got.frombytes(payload[: len(payload) - len(payload) % 4])
                        fds.extend(got)
                if flags & socket.MSG_CTRUNC:
                    _close_all(fds)
                    raise WireError("more descriptors than a frame may carry")
                if not chunk:
                    _close_all(fds)
                    raise Closed("the other side closed the connection")
                header += chunk
            size, count = _HEADER.unpack(header)
            if size > MAX_FRAME or count != len(fds):
                _close_all(fds)
                raise WireError(f"bad frame header (size {size}, {count} descriptors announced, {len(fds)} came)")
            body = bytearray(size)
            view = memoryview(body)
            got_bytes = 0
            while got_bytes < size:
                n = self.sock.recv_into(view[got_bytes:], size - got_bytes)
                if n == 0:
                    _close_all(fds)
                    raise Closed("the other side closed the connection mid-message")
                got_bytes += n
        except (ConnectionResetError, OSError) as exc:
            if isinstance(exc, WireError):
                raise
            _close_all(fds)
            raise Closed(str(exc)) from None
        return bytes(body), fds

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# -- shared memory --------------------------------------------------------------------------------------------------


class SharedMap(mmap.mmap):
    """A mapping of one of our memfds; weak-referenceable, so its descriptor is closed when nothing uses it."""


class _Mapping:
    __slots__ = ("fd", "size", "start", "key", "ref", "__weakref__")


_maps_lock = threading.Lock()
_by_start: dict[int, _Mapping] = {}
_by_inode: dict[tuple[int, int], _Mapping] = {}


def _address(mm: mmap.mmap) -> int:
    import ctypes

    holder = ctypes.c_char.from_buffer(mm)
    try:
        return ctypes.addressof(holder)
    finally:
        del holder


def _remember(mm: SharedMap, fd: int, size: int, key: tuple[int, int]) -> None:
    entry = _Mapping()
    entry.fd, entry.size, entry.key = fd, size, key
    entry.start = _address(mm)

    def forget(_ref: object, entry: _Mapping = entry) -> None:
        with _maps_lock:
            if _by_start.get(entry.start) is entry:
                del _by_start[entry.start]
            if _by_inode.get(entry.key) is entry:
                del _by_inode[entry.key]
        try:
            os.close(entry.fd)
        except OSError:
            pass

    entry.ref = weakref.ref(mm, forget)
    with _maps_lock:
        _by_start[entry.start] = entry
        _by_inode[key] = entry


def _owner_of(address: int) -> tuple[_Mapping, SharedMap] | None:
    """The live mapping of ours that holds ``address``, if any."""
    with _maps_lock:
        entries = list(_by_start.values())
    for entry in entries:
        if entry.start <= address < entry.start + entry.size:
            mm = entry.ref()
            if mm is not None:
                return entry, mm
    return None


def mapped_count() -> int:
    """How many shared mappings this process holds now (tests and the benchmark look)."""
    with _maps_lock:
        return sum(1 for e in _by_start.values() if e.ref() is not None)


def _new_memfd(size: int) -> int:
    """A fresh memfd of ``size`` bytes, not sealed yet: fill it (through a mapping that is closed after), then
    :func:`_seal`."""
    fd = os.memfd_create("hearth-array", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
    except OSError:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data: Any) -> None:
    """Write a contiguous buffer into a fresh memfd with write(2): the kernel allocates each page and copies into
    it in one pass, about twice as fast as faulting in a mapping and copying (page allocation is most of the cost)."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:done + _WRITE_CHUNK])


def _seal(fd: int) -> None:
    """No more writes, no shrinking, no growing: from now on the bytes are what they are, for both sides. (Only
    possible once no writable shared mapping of it is left.)"""
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)


def _map_received(fd: int, need: int, view: tuple | None = None) -> SharedMap:
    """Map a received descriptor after checking it is a sealed memfd big enough for what the header claims; reuse
    our mapping of the same file when there is one whose pages under ``view`` (offset, shape, strides, itemsize)
    this side never wrote to (then the descriptor is closed)."""
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError:
        raise WireError("an array arrived in a file that is not a sealed memfd") from None
    if seals & _SEALS != _SEALS:
        raise WireError("an array arrived in a memfd that is not sealed against writing, shrinking and growing")
    st = os.fstat(fd)
    if st.st_size < need:
        raise WireError(f"an array claims {need} bytes of a memfd that holds {st.st_size}")
    key = (st.st_dev, st.st_ino)
    with _maps_lock:
        entry = _by_inode.get(key)
        mm = entry.ref() if entry is not None else None
    if mm is not None and entry.size >= need and (view is None or _unchanged(entry, *view)):
        os.close(fd)
        return mm
    # Private: the bytes are shared until this side writes to a page, which then becomes this side's own copy.
    mm = SharedMap(fd, st.st_size, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
    _remember(mm, fd, st.st_size, key)
    return mm


# -- arrays ---------------------------------------------------------------------------------------------------------

_TORCH, _NUMPY = 0, 1
_WRITE_CHUNK = 1 << 30  # bytes per write(2): below the kernel's cap of about 2 GiB a call
# A fresh memfd is written whole at once: fault its pages in one go (much cheaper than page by page).
_FRESH = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


def _torch_dtypes(torch: Any) -> dict[str, Any]:
    names = ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool",
             "complex64", "complex128", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2")
    return {n: getattr(torch, n) for n in names if hasattr(torch, n)}


def _encode_tensor(t: Any, out: bytearray, fds: list[int]) -> None:
    torch = sys.modules["torch"]
    t = t.detach()
    if t.is_quantized:
        raise TypeError("quantized tensors cannot cross to or from a pack host (dequantize them first)")
    if t.layout != torch.strided:
        t = t.to_dense()
    t = t.resolve_conj().resolve_neg()
    dtype = str(t.dtype).removeprefix("torch.")
    shape = tuple(t.shape)
    itemsize = t.element_size()
    nbytes = t.numel() * itemsize
    if nbytes == 0:
        _array_header(out, _TORCH, dtype, shape, _contiguous_strides(shape), 0, 0, None)
        return
    if t.device.type == "cpu":
        owner = _owner_of(t.untyped_storage().data_ptr())
        if owner is not None:  # already in a sealed memfd: by reference, any strides, unless changed here
            entry, _mm = owner
            offset = t.data_ptr() - entry.start
            strides = tuple(t.stride())
            if _fits(offset, shape, strides, itemsize, entry.size) and \
                    _unchanged(entry, offset, shape, strides, itemsize):
                fds.append(os.dup(entry.fd))
                _array_header(out, _TORCH, dtype, shape, strides, offset, entry.size, len(fds) - 1)
                return
    # One copy, straight from wherever it is (any strides, a GPU too) into a fresh memfd laid out contiguously.
    fd = _new_memfd(nbytes)
    try:
        if t.device.type == "cpu" and t.is_contiguous():
            _write_all(fd, t.reshape(-1).view(torch.uint8).numpy())  # the tensor's own bytes, not a copy
        else:
            with mmap.mmap(fd, nbytes, _FRESH, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
                dst = torch.frombuffer(mm, dtype=t.dtype, count=t.numel()).view(shape)
                dst.copy_(t)
                del dst
        _seal(fd)
    except BaseException:
        os.close(fd)
        raise
    fds.append(fd)
    _array_header(out, _TORCH, dtype, shape, _contiguous_strides(shape), 0, nbytes, len(fds) - 1)


def _encode_ndarray(a: Any, out: bytearray, fds: list[int]) -> None:
    np = sys.modules["numpy"]
    if a.dtype.hasobject or a.dtype.fields is not None:
        raise TypeError(f"numpy arrays of dtype {a.dtype} cannot cross to or from a pack host (plain numbers only)")
    dtype = a.dtype.str  # e.g. '<f4': byte order included
    shape = tuple(a.shape)
    itemsize = a.dtype.itemsize
    nbytes = a.size * itemsize
    if nbytes == 0:
        _array_header(out, _NUMPY, dtype, shape, _contiguous_strides(shape), 0, 0, None)
        return
    address = a.__array_interface__["data"][0]
    owner = _owner_of(address)
    if owner is not None and all(s % itemsize == 0 for s in a.strides):
        entry, _mm = owner
        strides = tuple(s // itemsize for s in a.strides)
        offset = address - entry.start
        if _fits(offset, shape, strides, itemsize, entry.size) and \
                _unchanged(entry, offset, shape, strides, itemsize):
            fds.append(os.dup(entry.fd))
            _array_header(out, _NUMPY, dtype, shape, strides, offset, entry.size, len(fds) - 1)
            return
    fd = _new_memfd(nbytes)
    try:
        if a.flags.c_contiguous:
            _write_all(fd, a.reshape(-1).view(np.uint8))
        else:
            with mmap.mmap(fd, nbytes, _FRESH, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
                dst = np.frombuffer(mm, dtype=a.dtype, count=a.size).reshape(shape)
                dst[...] = a  # one copy, any strides
                del dst
        _seal(fd)
    except BaseException:
        os.close(fd)
        raise
    fds.append(fd)
    _array_header(out, _NUMPY, dtype, shape, _contiguous_strides(shape), 0, nbytes, len(fds) - 1)


_PAGE = mmap.PAGESIZE
_PRESENT, _SWAPPED, _FILE = 1 << 63, 1 << 62, 1 << 61


def _unchanged(entry: _Mapping, offset: int, shape: tuple, strides: tuple, itemsize: int) -> bool:
    """Whether this side never wrote to the pages the view spans. The mapping is private (copy-on-write), so a
    written page is this side's own and the memfd still holds the old bytes: sending by reference would lose the
    change. /proc/self/pagemap says which pages became anonymous (written) rather than the file's."""
    low = offset + itemsize * sum((d - 1) * s for d, s in zip(shape, strides, strict=True) if s < 0)
    high = offset + itemsize * (sum((d - 1) * s for d, s in zip(shape, strides, strict=True) if s > 0) + 1)
    first, last = (entry.start + low) // _PAGE, (entry.start + high - 1) // _PAGE
    raw = bytearray((last - first + 1) * 8)
    try:
        with open("/proc/self/pagemap", "rb", buffering=0) as fh:
            fh.seek(first * 8)
            if fh.readinto(raw) != len(raw):
                return False
    except OSError:
        return False
    torch = sys.modules.get("torch")
    if torch is not None:
        flags = torch.frombuffer(raw, dtype=torch.int64)
        present, swapped, file = (flags < 0), (flags & (1 << 62)) != 0, (flags & (1 << 61)) != 0
        return not bool((swapped | (present & ~file)).any())
    np = sys.modules.get("numpy")
    if np is not None:
        flags = np.frombuffer(raw, dtype=np.uint64)
        return not bool(((flags & np.uint64(_SWAPPED)) | ((flags & np.uint64(_PRESENT)) &
                                                          ~((flags & np.uint64(_FILE)) << np.uint64(2)))).any())
    for (flag,) in struct.iter_unpack("<Q", raw):
        if flag & _SWAPPED or (flag & _PRESENT and not flag & _FILE):
            return False
    return True


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for dim in reversed(shape):
        strides.append(step)
        step *= max(dim, 1)
    return tuple(reversed(strides))


def _fits(offset: int, shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int, size: int) -> bool:
    """Every element of the strided view lies inside [0, size)."""
    if any(d == 0 for d in shape):
        return offset >= 0
    low = offset + itemsize * sum((d - 1) * s for d, s in zip(shape, strides, strict=True) if s < 0)
    high = offset + itemsize * (sum((d - 1) * s for d, s in zip(shape, strides, strict=True) if s > 0) + 1)
    return low >= 0 and high <= size


def _array_header(out: bytearray, lib: int, dtype: str, shape: tuple, strides: tuple, offset: int, size: int,
                  fd_index: int | None) -> None:
    out += b"A"
    out += struct.pack("<B", lib)
    _put_text(out, b"", dtype)
    out += struct.pack("<B", len(shape))
    out += struct.pack(f"<{len(shape)}q", *shape)
    out += struct.pack(f"<{len(shape)}q", *strides)
    out += struct.pack("<qqi", offset, size, -1 if fd_index is None else fd_index)


def _decode_array(buf: bytes, pos: int, fds: list[int], used: set[int]) -> tuple[Any, int]:
    (lib,) = struct.unpack_from("<B", buf, pos)
    dtype, pos = _get_text(buf, pos + 1)
    (ndim,) = struct.unpack_from("<B", buf, pos)
    pos += 1
    shape = struct.unpack_from(f"<{ndim}q", buf, pos)
    pos += 8 * ndim
    strides = struct.unpack_from(f"<{ndim}q", buf, pos)
    pos += 8 * ndim
    offset, size, fd_index = struct.unpack_from("<qqi", buf, pos)
    pos += 20
    if any(d < 0 for d in shape) or offset < 0 or size < 0:
        raise WireError("an array header has a negative size")
    if fd_index == -1 and all(d > 0 for d in shape):
        # Only an empty array may come without shared memory: anything else would make the receiver allocate
        # whatever the sender claims, outside the sender's memory limit.
        raise WireError(f"an array of shape {tuple(shape)} came without shared memory behind it")
    if lib == _TORCH:
        import torch

        table = _torch_dtypes(torch)
        if dtype not in table:
            raise WireError(f"unknown tensor dtype {dtype!r}")
        tdtype = table[dtype]
        itemsize = torch.empty((), dtype=tdtype).element_size()
        if fd_index == -1:
            return torch.empty(shape, dtype=tdtype), pos
        mm = _take_mapping(fds, used, fd_index, offset, shape, strides, itemsize, size)
        count = (mm.size() - offset) // itemsize
        flat = torch.frombuffer(mm, dtype=tdtype, count=count, offset=offset)
        return flat.as_strided(shape, strides), pos
    if lib == _NUMPY:
        import numpy as np

        try:
            ndtype = np.dtype(dtype)
        except TypeError:
            raise WireError(f"unknown numpy dtype {dtype!r}") from None
        if ndtype.hasobject or ndtype.fields is not None:
            raise WireError(f"numpy dtype {dtype!r} may not cross")
        itemsize = ndtype.itemsize
        if fd_index == -1:
            return np.empty(shape, dtype=ndtype), pos
        mm = _take_mapping(fds, used, fd_index, offset, shape, strides, itemsize, size)
        count = (mm.size() - offset) // itemsize
        flat = np.frombuffer(mm, dtype=ndtype, count=count, offset=offset)
        view = np.lib.stride_tricks.as_strided(flat, shape=shape, strides=tuple(s * itemsize for s in strides))
        return view, pos
    raise WireError(f"unknown array library {lib}")


def _take_mapping(fds: list[int], used: set[int], index: int, offset: int, shape: tuple, strides: tuple,
                  itemsize: int, size: int) -> SharedMap:
    if not 0 <= index < len(fds):
        raise WireError(f"an array names descriptor {index} of a frame that carries {len(fds)}")
    if not _fits(offset, shape, strides, itemsize, size):
        raise WireError("an array reaches outside its shared memory")
    again = index in used  # two arrays of one frame in one file: the first mapped it, the second reuses that
    fd = os.dup(fds[index]) if again else fds[index]
    try:
        mm = _map_received(fd, size, (offset, shape, strides, itemsize))
    except BaseException:
        if again:
            os.close(fd)
        raise  # a first use stays in the frame's list, which decode() closes
    used.add(index)
    if not _fits(offset, shape, strides, itemsize, mm.size()):
        raise WireError("an array reaches outside its shared memory")
    return mm


# -- values ---------------------------------------------------------------------------------------------------------


class Codec:
    """Encode and decode values. ``other(value)`` turns a value of no encodable type into ``("H", id, type_name,
    generation)`` or ``("R", id, kind)`` (or raises); ``handle(tag, fields)`` turns those back into objects."""

    def __init__(self, other: Callable[[Any], tuple], handle: Callable[[str, tuple], Any]) -> None:
        self.other = other
        self.handle = handle

    def encode(self, value: Any) -> tuple[bytearray, list[int]]:
        out = bytearray()
        fds: list[int] = []
        try:
            self._enc(value, out, fds, 0)
        except BaseException:
            _close_all(fds)
            raise
        return out, fds

    def _enc(self, v: Any, out: bytearray, fds: list[int], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ValueError(f"a value nested deeper than {MAX_DEPTH} levels cannot cross")
        t = type(v)
        if v is None:
            out += b"N"
        elif t is bool:
            out += b"T" if v else b"F"
        elif t is int or isinstance(v, int):
            v = int(v)
            if -(1 << 63) <= v < (1 << 63):
                out += b"i" + struct.pack("<q", v)
            else:
                _put_text(out, b"I", str(v))
        elif t is float or isinstance(v, float):
            out += b"f" + struct.pack("<d", float(v))
        elif t is str or isinstance(v, str):
            _put_text(out, b"s", str(v))
        elif t is bytes or t is bytearray or t is memoryview:
            data = bytes(v)
            out += b"b" + struct.pack("<I", len(data)) + data
        elif t is list or t is tuple or (isinstance(v, (list, tuple)) and not hasattr(v, "_fields")):
            out += (b"t" if isinstance(v, tuple) else b"l") + struct.pack("<I", len(v))
            for item in v:
                self._enc(item, out, fds, depth + 1)
        elif t is dict or isinstance(v, dict):
            out += b"d" + struct.pack("<I", len(v))
            for key, item in v.items():
                self._enc(key, out, fds, depth + 1)
                self._enc(item, out, fds, depth + 1)
        else:
            self._enc_other(v, out, fds, depth)

    def _enc_other(self, v: Any, out: bytearray, fds: list[int], depth: int) -> None:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(v, torch.Tensor):
            _encode_tensor(v, out, fds)
            return
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(v, np.ndarray):
                _encode_ndarray(v, out, fds)
                return
            if isinstance(v, np.generic) and not isinstance(v, (np.object_, np.void)):
                self._enc(v.item(), out, fds, depth)
                return
        tag = self.other(v)
        if tag[0] == "H":
            _, hid, type_name, generation = tag
            out += b"H" + struct.pack("<QQ", hid, generation)
            _put_text(out, b"", type_name)
        elif tag[0] == "R":
            _, rid, kind = tag
            out += b"R" + struct.pack("<Q", rid)
            _put_text(out, b"", kind)
        else:  # pragma: no cover - the hooks only return H or R
            raise TypeError(f"cannot encode {type(v).__name__}")

    def decode(self, buf: bytes, fds: list[int]) -> Any:
        """Decode one frame's body; the frame's descriptors are used or closed, never leaked."""
        used: set[int] = set()
        try:
            value, pos = self._dec(buf, 0, fds, used, 0)
            if pos != len(buf):
                raise WireError(f"{len(buf) - pos} stray bytes after a message")
            return value
        except (struct.error, UnicodeDecodeError, IndexError, ValueError, OverflowError, TypeError,
                RuntimeError) as exc:
            raise WireError(f"malformed message: {exc}") from None
        finally:
            for i, fd in enumerate(fds):
                if i not in used:
                    try:
                        os.close(fd)
                    except OSError:
                        pass

    def _dec(self, buf: bytes, pos: int, fds: list[int], used: set[int], depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise WireError(f"a message nested deeper than {MAX_DEPTH} levels")
        tag = buf[pos:pos + 1]
        pos += 1
        if tag == b"N":
            return None, pos
        if tag == b"T":
            return True, pos
        if tag == b"F":
            return False, pos
        if tag == b"i":
            return struct.unpack_from("<q", buf, pos)[0], pos + 8
        if tag == b"I":
            text, pos = _get_text(buf, pos)
            if len(text) > 5000:
                raise WireError("an integer of more than 5000 digits")
            return int(text), pos
        if tag == b"f":
            return struct.unpack_from("<d", buf, pos)[0], pos + 8
        if tag == b"s":
            return _get_text(buf, pos)
        if tag == b"b":
            (n,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            if pos + n > len(buf):
                raise WireError("bytes longer than the message")
            return buf[pos:pos + n], pos + n
        if tag in (b"l", b"t"):
            (n,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            if n > len(buf) - pos:
                raise WireError("a list longer than the message")
            items = []
            for _ in range(n):
                item, pos = self._dec(buf, pos, fds, used, depth + 1)
                items.append(item)
            return (tuple(items) if tag == b"t" else items), pos
        if tag == b"d":
            (n,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            if n > len(buf) - pos:
                raise WireError("a dict longer than the message")
            result = {}
            for _ in range(n):
                key, pos = self._dec(buf, pos, fds, used, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise WireError("a dict key that is not hashable") from None
                result[key], pos = self._dec(buf, pos, fds, used, depth + 1)
            return result, pos
        if tag == b"A":
            return _decode_array(buf, pos, fds, used)
        if tag == b"H":
            hid, generation = struct.unpack_from("<QQ", buf, pos)
            type_name, pos = _get_text(buf, pos + 16)
            return self.handle("H", (hid, type_name, generation)), pos
        if tag == b"R":
            (rid,) = struct.unpack_from("<Q", buf, pos)
            kind, pos = _get_text(buf, pos + 8)
            return self.handle("R", (rid, kind)), pos
        raise WireError(f"unknown tag {tag!r} at byte {pos - 1}")


def _put_text(out: bytearray, tag: bytes, text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    out += tag + struct.pack("<I", len(data)) + data


def _get_text(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    pos += 4
    if pos + n > len(buf):
        raise WireError("text longer than the message")
    return buf[pos:pos + n].decode("utf-8", "surrogatepass"), pos + n


def error_info(exc: BaseException, tb: str = "") -> dict:
    """What crosses when something raised: its type, message, traceback, and the kind the parent acts on."""
    kind = "error"
    name = type(exc).__name__
    if getattr(exc, "hearth_trust_required", False):
        kind = "trust"
    elif name in ("InterruptProcessingException", "Interrupted") or getattr(exc, "hearth_interrupted", False):
        kind = "interrupted"
    elif isinstance(exc, MemoryError):
        kind = "memory"
    elif isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        kind = "file-size"
    message = str(exc) or name
    return {"type": name, "module": str(type(exc).__module__)[:200], "message": message[:2000],
            "traceback": tb[-6000:], "kind": kind,
            "uses": str(getattr(exc, "uses", "") or "")[:300]}
