"""The source of the pack the host tests run (written to a temporary folder and imported only inside hosts)."""

SOURCE = r'''
import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
import weakref

from hearth.sandbox import host_runtime

LIVE_THINGS = weakref.WeakSet()
KEPT = {}


class Thing:
    def __init__(self, value):
        self.value = value
        LIVE_THINGS.add(self)


def node(function, inputs=None, outputs=("ANY",)):
    def INPUT_TYPES(cls):
        return {"required": dict(inputs or {}), "optional": {"x": ("*",)}}
    attrs = {"FUNCTION": "run", "RETURN_TYPES": tuple(outputs), "CATEGORY": "hosttest",
             "INPUT_TYPES": classmethod(INPUT_TYPES), "run": lambda self, **kw: function(**kw)}
    return type(function.__name__, (), attrs)


def echo(**kw):
    return (kw.get("x"),)


def info(**kw):
    return ({"pid": os.getpid(), "uid": os.getuid(), "env": dict(os.environ), "home": os.path.expanduser("~"),
             "cwd": os.getcwd(), "hostname": socket.gethostname(), "sys_path": list(sys.path),
             "torch_loaded": "torch" in sys.modules},)


def read_file(x):
    try:
        with open(x, "rb") as fh:
            return (fh.read(),)
    except OSError as exc:
        return ("error: " + type(exc).__name__ + ": " + str(exc),)


def write_file(x):
    path, data = x
    try:
        with open(path, "wb") as fh:
            fh.write(data)
        return ("ok",)
    except OSError as exc:
        return ("error: " + type(exc).__name__ + ": " + str(exc),)


def listdir(x):
    try:
        return (sorted(os.listdir(x)),)
    except OSError as exc:
        return ("error: " + type(exc).__name__,)


def connect(x):
    host, port = x
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"stolen")
        return ("connected",)
    except OSError as exc:
        return ("error: " + type(exc).__name__ + ": " + str(exc),)


def connect_unix(x):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(x)
            s.sendall(b"stolen")
        return ("connected",)
    except OSError as exc:
        return ("error: " + type(exc).__name__ + ": " + exc.strerror,)


def keyctl(x):
    import ctypes
    import platform
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = {"x86_64": 250, "aarch64": 219}[platform.machine()]
    result = libc.syscall(number, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID of the session keyring
    return (result, os.strerror(ctypes.get_errno()) if result < 0 else "")


def pair(x):
    a, b = socket.socketpair()
    a.sendall(b"ok")
    return (b.recv(2),)


def spawn(x):
    proc = subprocess.Popen(["sleep", str(x)])
    KEPT["proc"] = proc
    return (proc.pid,)


def spawn_many(x):
    started = []
    try:
        for _ in range(x):
            started.append(subprocess.Popen(["sleep", "30"]))
        return ("started " + str(len(started)),)
    except OSError as exc:
        return ("error after " + str(len(started)) + ": " + type(exc).__name__,)
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


def open_many(x):
    files = []
    try:
        for _ in range(x):
            files.append(open("/dev/null"))
        return ("opened " + str(len(files)),)
    except OSError as exc:
        return ("error after " + str(len(files)) + ": " + type(exc).__name__ + ": " + exc.strerror,)
    finally:
        for fh in files:
            fh.close()


def make_thing(x):
    return (Thing(x),)


def thing_value(x):
    return (x.value, type(x).__name__, len(LIVE_THINGS))


def count_things(**kw):
    gc.collect()
    return (len(LIVE_THINGS),)


def memory_bomb(x):
    hog = bytearray(x)
    return (len(hog),)


def exit_now(x):
    os._exit(x)


def segfault(**kw):
    import ctypes
    ctypes.string_at(0)  # a real fault: pid 1 of a namespace ignores a SIGSEGV it sends itself


def raw_write(x):
    os.write(3, x)  # straight onto Hearth's socket, past the wire
    time.sleep(5)
    return ("not noticed",)


def wait_for_interrupt(**kw):
    for _ in range(1000):
        if host_runtime.interrupted():
            raise host_runtime.Interrupted("stopped")
        time.sleep(0.01)
    return ("never interrupted",)


def hang(**kw):
    while True:
        time.sleep(1)


def progress(x):
    for i in range(x):
        host_runtime.emit("progress", {"value": i + 1, "max": x})
    print("hello from the pack on stdout")
    return (host_runtime.current_node(),)


def noisy(x):
    print("\x1b[2J\x1b]0;owned\x07cleared" + "y" * x, flush=True)
    return ("noisy",)


def use_model(x):
    model, method = x[0], x[1]
    if method == "merge":  # a lent value passed back as an argument of a lent value's method
        merged = model.merge(x[2])
        return (merged, merged.patches())
    if method == "clone-patch":
        clone = model.clone()
        clone.add_patch("k", 2.0)
        return (clone, clone.patches())
    if method == "keep":
        KEPT["model"] = model
        return (model,)
    return (getattr(model, method)(),)


def tensor_op(x):
    op, value = x
    import torch
    if op == "add1":
        value.add_(1)
        return (None,)
    if op == "keep":
        KEPT["tensor"] = value
        return (value.data_ptr(),)
    if op == "kept":
        return (KEPT["tensor"],)
    if op == "same":
        return (KEPT["tensor"].data_ptr() == value.data_ptr(), value.data_ptr())
    if op == "make":
        return (torch.arange(value, dtype=torch.float32),)
    if op == "double":
        return (value * 2,)
    return (value,)


def raise_error(x):
    raise ValueError(x)


def trusted_only(x):
    raise host_runtime.TrustRequired("it uses MODEL.model.diffusion_model")


def slow_echo(x):
    time.sleep(0.05)
    return (x,)


def async_echo(x):
    async def inner():
        return (x,)
    return inner()


def async_wait(**kw):
    async def inner():  # awaits, as a node calling a remote API would, never looking at the interrupt flag
        await asyncio.sleep(60)
        return ("never interrupted",)
    return inner()


NODES = {f.__name__: node(f) for f in (echo, noisy, info, read_file, write_file, listdir, connect, spawn, make_thing,
                                       thing_value, count_things, memory_bomb, exit_now, segfault,
                                       wait_for_interrupt, hang, progress, use_model, tensor_op, raise_error,
                                       trusted_only, slow_echo, async_echo, async_wait, raw_write,
                                       spawn_many, open_many,
                                       connect_unix, keyctl, pair)}


class WithMethods:
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("n",)
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"default": 1, "min": 0})}}

    @classmethod
    def IS_CHANGED(cls, n):
        return n * 10

    @classmethod
    def VALIDATE_INPUTS(cls, n):
        return True if n >= 0 else "n must not be negative"

    async def run(self, n):
        return (n + 1,)


NODES["WithMethods"] = WithMethods


def load(args, host=None):
    if args.get("fail"):
        raise ImportError("this pack needs a module it does not have")
    if args.get("hang"):
        time.sleep(3600)
    return {"nodes": NODES, "display": {"echo": "Echo"}, "web_directory": None, "notes": ["loaded"]}
'''
