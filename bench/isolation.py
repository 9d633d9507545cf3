"""What running a node in a pack host costs, beside the same node called in-process in the same run.

1. Per-call overhead: a node with small inputs (an int and a short string), ``--calls`` calls (default 1000), median
   per call, in-process and through a host (target: under 1 ms).
2. A ``--gib`` GiB float32 tensor (default 1) crossing into the host and back out: a tensor made in Hearth's
   process (copied once into shared memory on the way in, returned by reference), then the tensor that came back
   crossing again (already shared: by reference both ways). Target: under 50 ms, and no second copy: the RSS growth
   of Hearth's process and of the host is printed, split into anonymous memory (a private copy) and shared memory
   (the one memfd both map).
3. Host start time: PackHost() to describe() answered, median of ``--starts`` (default 5).

Run: .venv/bin/python bench/isolation.py [--calls 1000] [--gib 1] [--starts 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hearth.sandbox.host import HostConfig, PackHost, isolation_available  # noqa: E402

PACK = textwrap.dedent('''
    class Small:
        FUNCTION = "run"
        RETURN_TYPES = ("STRING",)

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"n": ("INT",), "text": ("STRING",)}}

        def run(self, n, text):
            return (f"{text}{n}",)


    class Identity:
        FUNCTION = "run"
        RETURN_TYPES = ("LATENT",)

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"x": ("LATENT",)}}

        def run(self, x):
            float(x[0])  # read one page: the host really maps it (a write would make the host's own copy)
            return (x,)


    class Touch:
        FUNCTION = "run"
        RETURN_TYPES = ("FLOAT",)

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"x": ("LATENT",)}}

        def run(self, x):
            return (float(x[::1024].sum()),)  # one float of every 4 KiB page: the host maps all of it


    def load(args, host=None):
        return {"nodes": {"Small": Small, "Identity": Identity, "Touch": Touch}}
''')


def rss(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, RssAnon and RssShmem of a process, in bytes."""
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssShmem"):
                fields[key] = int(value.split()[0]) * 1024
    return fields


def growth(before: dict[str, int], after: dict[str, int]) -> str:
    mib = 1024**2
    return (f"RSS {(after['VmRSS'] - before['VmRSS']) / mib:+.0f} MiB (anonymous "
            f"{(after['RssAnon'] - before['RssAnon']) / mib:+.0f}, shared {(after['RssShmem'] - before['RssShmem']) / mib:+.0f})")


def median_call(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    ok, reason = isolation_available()
    if not ok:
        sys.exit(f"pack hosts cannot run here: {reason}")

    with tempfile.TemporaryDirectory(prefix="hearth-bench-isolation-") as tmp:
        (Path(tmp) / "benchpack.py").write_text(PACK)
        sys.path.insert(0, tmp)
        import benchpack  # the same classes, in-process, for the baseline

        config = HostConfig(name="bench", entry="benchpack:load", readable=(tmp,), sys_path=(tmp,))

        # 1. per-call overhead
        node = benchpack.Small()
        inline = median_call(lambda: node.run(n=7, text="hello"), args.calls)
        host = PackHost(config)
        host.describe()
        for _ in range(50):
            host.call("Small", "run", {"n": 7, "text": "hello"})
        hosted = median_call(lambda: host.call("Small", "run", {"n": 7, "text": "hello"}), args.calls)
        print(f"small node, median of {args.calls} calls: in-process {inline * 1e6:.1f} us, pack host "
              f"{hosted * 1e6:.1f} us (overhead {(hosted - inline) * 1e3:.3f} ms; target < 1 ms)")

        # 2. a large tensor in and out
        host.call("Identity", "run", {"x": torch.ones(16)})  # the host imports torch on its first tensor
        numel = int(args.gib * 1024**3) // 4
        tensor = torch.ones(numel, dtype=torch.float32)
        gc.collect()
        identity = benchpack.Identity()
        start = time.perf_counter()
        (same,) = identity.run(x=tensor)
        inline = time.perf_counter() - start
        parent_before, host_before = rss(), rss(host.pid)
        start = time.perf_counter()
        (back,) = host.call("Identity", "run", {"x": tensor})
        first = time.perf_counter() - start
        back[::1024].sum()  # the parent reads the whole returned tensor's pages (one float per 4 KiB page)
        host.call("Touch", "run", {"x": back})  # and so does the host
        parent_after, host_after = rss(), rss(host.pid)
        print(f"{args.gib:g} GiB float32 tensor made here, in and out: {first * 1e3:.1f} ms (in-process "
              f"{inline * 1e6:.1f} us; the way in copies it once into shared memory)")
        print(f"    Hearth's process {growth(parent_before, parent_after)}; host {growth(host_before, host_after)} "
              "(both read every page; the shared growth is one memfd mapped by both, anonymous would be a copy)")
        ok_back = torch.equal(back[:1000], tensor[:1000])
        del tensor
        gc.collect()
        parent_before, host_before = rss(), rss(host.pid)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            (again,) = host.call("Identity", "run", {"x": back})
            times.append(time.perf_counter() - start)
        parent_after, host_after = rss(), rss(host.pid)
        print(f"the same tensor again (it lives in shared memory), in and out: median of 5 "
              f"{statistics.median(times) * 1e3:.2f} ms (target < 50 ms); same mapping back: "
              f"{again.data_ptr() == back.data_ptr()}; values intact: {ok_back}")
        print(f"    Hearth's process {growth(parent_before, parent_after)}; host {growth(host_before, host_after)}")
        host.close()
        del back, again
        gc.collect()

        # 3. host start
        starts = []
        for _ in range(args.starts):
            start = time.perf_counter()
            host = PackHost(config)
            host.describe()
            starts.append(time.perf_counter() - start)
            host.close()
        print(f"host start (PackHost to describe answered), median of {args.starts}: "
              f"{statistics.median(starts) * 1e3:.0f} ms (in-process import: none)")


if __name__ == "__main__":
    main()
