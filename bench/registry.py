"""Registry server load: 1,000 packs x 5 versions on SQLite; 50 concurrent clients reading; publish throughput.

Reads: each client loops over a mix of search (`/api/v1/search` and `/nodes/search`), detail (`/nodes/{id}`) and
install metadata (`/nodes/{id}/install`) for --duration seconds (closed loop: a client sends its next request
as soon as the last answer arrives, so latency includes queueing behind the other 49). The clients run in
separate processes from the server, on the same machine. Publishing: --publishes real POST + PUT publishes by
8 concurrent publishers, then the time until the verification job has made them all active. A baseline row
runs the same clients against /healthz (no database), which shows what the framework and machine allow.
The server runs as shipped, read cache included: requests are spread uniformly over all 1,000 packs, and at
these rates nearly every detail and install answer is cached within seconds (search terms repeat less).
`--cache-ttl 0` measures every read against the database.

Run:   .venv/bin/python bench/registry.py [--duration 60] [--clients 50] [--workers 1] [--publishes 100]
       [--cache-ttl 60] [--think-ms 0]   (a think time makes the clients paced users, not a closed loop)

Scaling out: `--processes N` runs separate server processes (1, 2, 4 ... up to N) on one database, each on its
own port with a shared --public-url as behind a load balancer, clients spread evenly over them, on SQLite and
on a throwaway PostgreSQL cluster (needs PostgreSQL's binaries, as the tests do) in the same run, and prints
read throughput and p50/p99 for each. The catalogue is seeded once per database.
       .venv/bin/python bench/registry.py --processes 4 [--duration 20] [--packs 300]
Target: p99 < 50 ms for reads on SQLite on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

WORDS = ["image", "latent", "mask", "video", "upscale", "prompt", "noise", "color", "depth", "pose", "face",
         "style", "tile", "blend", "crop", "sampler", "lora", "audio", "text", "batch"]


def seed(settings, packs: int, versions: int) -> list[dict]:  # noqa: ANN001
    """Fill the database directly (publishing 5,000 versions over HTTP would take most of the run)."""
    from sqlmodel import Session

    from hearth.registry.archive import build_archive
    from hearth.registry_server.accounts.models import Publisher
    from hearth.registry_server.accounts.services import create_publisher, create_user
    from hearth.registry_server.app import open_server
    from hearth.registry_server.packs.models import NodeClass, Pack, Version
    from hearth.registry_server.packs.services import refresh_pack
    from hearth.registry_server.storage.services import archive_key
    from tests.harness.packs import make_pack

    reg = open_server(settings)
    work = Path(tempfile.mkdtemp(prefix="bench-seed-"))
    arc = build_archive(make_pack(work, "seed", "1.0.0", "bench"), work / "seed.zip")
    reg.storage.put_file(archive_key(arc.sha256), arc.path)
    rng = random.Random(7)
    catalogue = []
    with Session(reg.engine) as s:
        create_user(s, "bench-owner")
        for p in range(20):
            create_publisher(s, f"pub-{p}", "bench-owner")
        for i in range(packs):
            a, b = rng.sample(WORDS, 2)
            pid = f"comfyui-{a}-{b}-{i}"
            classes = [f"{a.title()}{b.title()}{i}Node{k}" for k in range(3)]
            pack = Pack(id=pid, key=pid, publisher_id=f"pub-{i % 20}", name=f"{a.title()} {b.title()} {i}",
                        description=f"Nodes for {a} and {b} workflows, pack number {i}.", downloads=rng.randint(0, 5000))
            s.add(pack)
            s.flush()
            for v in range(versions):
                vid = str(uuid.uuid4())
                s.add(Version(id=vid, pack_id=pid, version=f"1.{v}.0", status="active", sha256=arc.sha256,
                              size=arc.size, blob_key=archive_key(arc.sha256), requires_python=">=3.9",
                              dependencies=[], manifest={"name": pid}))
                s.flush()
                if v == versions - 1:
                    for c in classes:
                        s.add(NodeClass(version_id=vid, name=c, category=a, kind="comfyui"))
            catalogue.append({"id": pid, "classes": classes, "words": [a, b]})
            if i % 100 == 99:
                s.commit()
        s.commit()
        for pack in s.exec(__import__("sqlmodel").select(Pack)).all():
            refresh_pack(s, pack)
        s.commit()
        assert s.get(Publisher, "pub-0") is not None
    reg.engine.dispose()
    return catalogue


def _request(rng: random.Random, catalogue: list[dict]) -> tuple[str, str, dict]:
    if not catalogue:  # the baseline: an endpoint that touches neither the database nor storage
        return "healthz", "/healthz", {}
    item = rng.choice(catalogue)
    roll = rng.random()
    if roll < 0.2:
        return "search", "/api/v1/search", {"q": rng.choice(item["words"] + item["classes"][:1])}
    if roll < 0.35:
        return "search", "/nodes/search", {"search": rng.choice(item["words"])}
    if roll < 0.65:
        return "detail", f"/nodes/{item['id']}", {}
    return "install", f"/nodes/{item['id']}/install", {}


class _Connection:
    """A minimal keep-alive HTTP/1.1 GET client. httpx costs the load generator about as much CPU per request as
    the server spends answering it; on a 2-core machine that would measure the clients, not the server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


async def _client(url: str | list[str], catalogue: list[dict], until: float, seed_: int, out: list, think: float
                  ) -> None:
    rng = random.Random(seed_)
    if isinstance(url, list):  # several server processes: each client talks to one, as a load balancer spreads them
        url = url[seed_ % len(url)]
    host, port = url.removeprefix("http://").split(":")
    conn = _Connection(host, int(port))
    if think:
        await asyncio.sleep(rng.uniform(0, think))  # spread the first requests out
    while time.monotonic() < until:
        kind, path, params = _request(rng, catalogue)
        target = path + ("?" + urlencode(params) if params else "")
        t = time.perf_counter()
        status = await conn.get(target)
        out.append((kind, time.perf_counter() - t, status))
        if think:
            await asyncio.sleep(rng.expovariate(1 / think))


def _load_process(url: str | list[str], catalogue: list[dict], clients: int, duration: float, idx: int, q: mp.Queue,
                  think: float = 0.0) -> None:
    results: list = []

    async def main() -> None:
        until = time.monotonic() + duration
        await asyncio.gather(*[_client(url, catalogue, until, idx * 1000 + c, results, think) for c in range(clients)])

    asyncio.run(main())
    q.put(results)


def run_reads(url: str | list[str], catalogue: list[dict], clients: int, duration: float, procs: int, think: float = 0.0
              ) -> list:
    q: mp.Queue = mp.Queue()
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    ps = [mp.Process(target=_load_process, args=(url, catalogue, n, duration, i, q, think))
          for i, n in enumerate(shares)]
    for p in ps:
        p.start()
    results = []
    for _ in ps:
        results.extend(q.get())
    for p in ps:
        p.join()
    return results


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000 if values else 0.0


def run_publishes(url: str, settings, n: int, concurrency: int = 8) -> tuple[float, float]:  # noqa: ANN001
    """Returns (accepted publishes per second, seconds until all are active)."""
    from sqlmodel import Session

    from hearth.registry.archive import build_archive
    from hearth.registry_server.accounts.services import create_token
    from hearth.registry_server.app import open_server
    from tests.harness.packs import make_pack

    reg = open_server(settings, migrate=False)
    with Session(reg.engine) as s:
        token = create_token(s, None, "pub-0", "publish")[0]
    work = Path(tempfile.mkdtemp(prefix="bench-pub-"))
    jobs = []
    for i in range(n):
        name = f"fresh-pack-{i}"
        arc = build_archive(make_pack(work, name, "1.0.0", "pub-0"), work / f"{name}.zip")
        jobs.append((name, arc.path.read_bytes()))

    async def publish_all() -> None:
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async def one(name: str, data: bytes) -> None:
                async with sem:
                    r = await client.post(f"/publishers/pub-0/nodes/{name}/versions", json={
                        "personal_access_token": token, "node": {"id": name}, "node_version": {"version": "1.0.0"}})
                    r.raise_for_status()
                    up = await client.put(r.json()["signedUrl"], content=data,
                                          headers={"Content-Type": "application/zip"})
                    up.raise_for_status()
            await asyncio.gather(*[one(n_, d) for n_, d in jobs])

    t0 = time.perf_counter()
    asyncio.run(publish_all())
    accepted = time.perf_counter() - t0
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            # Search lists only packs with an active version, so the count says how many are verified.
            if client.get("/api/v1/search", params={"q": "fresh-pack"}).json()["total"] >= n:
                break
            time.sleep(0.2)
    reg.engine.dispose()
    return n / accepted, time.perf_counter() - t0


def _server_cpu(server) -> float:  # noqa: ANN001
    """CPU seconds (user + system) used so far by the server process and its children."""
    import psutil

    proc = psutil.Process(server.proc.pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def scale_out(args) -> None:  # noqa: ANN001
    """Reads against 1, 2, 4 ... N processes on one database, SQLite beside PostgreSQL."""
    from hearth.registry_server.settings import Settings
    from tests.registry_server.servers import PostgresCluster, RegistryProcess, free_port

    counts = [n for n in (1, 2, 4, 8, 16) if n <= args.processes] or [1]
    if args.processes not in counts:
        counts.append(args.processes)
    pg = PostgresCluster()
    reason = pg.available
    backends = ["sqlite"] + ([] if reason else ["postgres"])
    if reason:
        print(f"PostgreSQL skipped: {reason}")
    else:
        pg.start()
    rows = []
    try:
        for backend in backends:
            data = Path(tempfile.mkdtemp(prefix=f"bench-registry-{backend}-"))
            settings = Settings(data_dir=data, cache_ttl_s=args.cache_ttl)
            if backend == "postgres":
                settings.db_url = pg.create_database(f"bench_{uuid.uuid4().hex[:8]}")
            t = time.perf_counter()
            catalogue = seed(settings, args.packs, args.versions)
            print(f"{backend}: seeded {args.packs} packs x {args.versions} versions in {time.perf_counter() - t:.1f}s")
            for n in counts:
                ports = [free_port() for _ in range(n)]
                public = f"http://127.0.0.1:{ports[0]}"  # stands in for the load balancer's address
                servers = []
                try:
                    for i, port in enumerate(ports):
                        own = dataclasses.replace(settings, data_dir=data / f"p{i}", public_url=public)
                        own.db_url = settings.database_url
                        own.storage_url = settings.storage
                        server = RegistryProcess(own)
                        server.port, server.url = port, f"http://127.0.0.1:{port}"
                        servers.append(server.start())
                    urls = [s.url for s in servers]
                    run_reads(urls, catalogue, max(4, n), 2, 1)  # warm-up, each process
                    results = run_reads(urls, catalogue, args.clients, args.duration, args.load_procs)
                finally:
                    for server in servers:
                        server.stop()
                lat = [d for _, d, _ in results]
                errors = sum(1 for _, _, status in results if status != 200)
                rows.append((backend, n, len(lat) / args.duration, pct(lat, 50), pct(lat, 99), errors))
                print(f"  {n} process(es): {rows[-1][2]:.0f} req/s, p99 {rows[-1][4]:.1f} ms")
    finally:
        if not reason:
            pg.stop()
    cache = f"read cache {args.cache_ttl:.0f}s" if args.cache_ttl else "no read cache"
    print(f"\nreads across processes: {args.clients} clients (closed loop), {args.duration:.0f}s each, {cache}")
    print(f"{'database':10} {'processes':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for backend, n, rate, p50, p99, errors in rows:
        print(f"{backend:10} {n:9d} {rate:8.0f} {p50:8.1f} {p99:8.1f} {errors:7d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of read load (default 60)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--packs", type=int, default=1000)
    ap.add_argument("--versions", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1, help="server processes")
    ap.add_argument("--load-procs", type=int, default=2, help="client processes")
    ap.add_argument("--publishes", type=int, default=100)
    ap.add_argument("--cache-ttl", type=float, default=60.0,
                    help="server read cache TTL in seconds (0: no cache, every read hits the database)")
    ap.add_argument("--processes", type=int, default=0,
                    help="scale-out table: 1, 2, 4 ... up to N server processes on SQLite and PostgreSQL")
    ap.add_argument("--think-ms", type=float, default=0.0,
                    help="mean pause between a client's requests (0: closed loop, the default)")
    args = ap.parse_args()
    if args.processes:
        return scale_out(args)

    from hearth.registry_server.settings import Settings
    from tests.registry_server.servers import RegistryProcess

    data = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    settings = Settings(data_dir=data, cache_ttl_s=args.cache_ttl)
    t = time.perf_counter()
    catalogue = seed(settings, args.packs, args.versions)
    print(f"seeded {args.packs} packs x {args.versions} versions in {time.perf_counter() - t:.1f}s")
    server = RegistryProcess(settings)
    if args.workers > 1:
        server.extra_env = {"WEB_CONCURRENCY": str(args.workers)}
    server.start()
    try:
        run_reads(server.url, catalogue, 4, 2, 1)  # warm-up
        cpu0 = _server_cpu(server)
        think = args.think_ms / 1000
        results = run_reads(server.url, catalogue, args.clients, args.duration, args.load_procs, think)
        cpu_read = _server_cpu(server) - cpu0
        baseline_s = min(args.duration, 15.0)
        cpu0 = _server_cpu(server)
        baseline = run_reads(server.url, [], args.clients, baseline_s, args.load_procs, think)
        cpu_base = (_server_cpu(server) - cpu0) / max(len(baseline), 1) * 1000
        errors = sum(1 for _, _, status in results if status != 200)
        pacing = f"{args.think_ms:.0f} ms mean think time" if think else "closed loop"
        cache = f"read cache {args.cache_ttl:.0f}s" if args.cache_ttl else "no read cache"
        print(f"\nreads: {args.clients} clients ({pacing}), {args.duration:.0f}s, SQLite, {cache}, "
              f"{args.workers} server process(es)")
        print(f"{'kind':10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for kind in ("search", "detail", "install", "all"):
            lat = [d for k, d, _ in results if kind in (k, "all")]
            print(f"{kind:10} {len(lat):9d} {len(lat) / args.duration:8.0f} {pct(lat, 50):8.1f} {pct(lat, 99):8.1f}")
        lat = [d for _, d, _ in baseline]
        print(f"{'baseline':10} {len(lat):9d} {len(lat) / baseline_s:8.0f} {pct(lat, 50):8.1f} {pct(lat, 99):8.1f}"
              "   (GET /healthz: framework and machine ceiling, no database)")
        lat = [d for _, d, _ in results]
        # CPU seconds the server spent per request do not depend on what else the machine is running.
        per_req = cpu_read / max(len(results), 1) * 1000
        print(f"server CPU: {per_req:.2f} ms per read request ({1000 / per_req:.0f} req/s per fully available core); "
              f"baseline {cpu_base:.2f} ms")
        print(f"errors: {errors}; mean {statistics.mean(lat) * 1000:.1f} ms; target p99 < 50 ms: "
              f"{'met' if pct(lat, 99) < 50 else 'NOT met'}")
        if args.publishes:
            rate, until_active = run_publishes(server.url, settings, args.publishes)
            print(f"\npublish: {args.publishes} publishes (POST + PUT, 8 concurrent): {rate:.1f}/s accepted; "
                  f"all verified and active after {until_active:.1f}s "
                  f"({args.publishes / until_active:.1f}/s end to end)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
