"""Install speed: `comfy install` of a pack with 3 pack dependencies and 10 Python dependencies, beside `pip install`.

Everything is local and offline: a registry server on loopback holds four packs (hbench-top, which depends on the
packs hbench-a, -b and -c; the four of them need ten Python packages between them), and the ten Python packages
are tiny wheels this script builds, offered to both installers from one folder (`COMFY_PYPI_URL=none` plus
`COMFY_FIND_LINKS` for comfy; `--no-index --find-links` for pip). Both caches are warm: comfy installs the set once
into a throwaway environment first, and pip gets every wheel, the registry-built pack wheels included, from the
local folder, so neither downloads anything while timed.

Timed, each in a fresh target made beforehand (the making is not timed): `comfy install hbench-top --env E`
(resolve with uv against the registry's simple index, write pylock.toml, verify hashes, build a new generation and
switch to it) and `pip install hbench-top` into a fresh venv. Then a no-op `comfy sync` of an environment that
already matches its lock. Each figure is the median of --repeat runs of the whole command, process start included.

Run:   .venv/bin/python bench/install.py [--repeat 3]
Target: comfy install <= 0.5x pip's time; a no-op comfy sync < 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.packs import class_name, project_pack, python_wheel  # noqa: E402  (the repository's test harness)

PYTHON_DEPS = [f"hbench-dep-{i}" for i in range(10)]
# Which Python packages each pack needs: ten between them, some shared, as real packs share numpy or pillow.
PACKS = {
    "hbench-a": PYTHON_DEPS[0:4],
    "hbench-b": PYTHON_DEPS[3:7],
    "hbench-c": PYTHON_DEPS[6:9],
    "hbench-top": ["hbench-a", "hbench-b", "hbench-c", PYTHON_DEPS[9], PYTHON_DEPS[0]],
}
PUBLISHER = "bench"


def make_pack(folder: Path, name: str, requires: list[str]) -> Path:
    """A Python-project pack (its own package, a hearth entry point, one node), as the first-party packs are."""
    deps = [f"{r}>=1.0" if r.startswith("hbench-dep") else f"{r}>=0.1" for r in requires]
    return project_pack(folder, name, "1.0.0", PUBLISHER, node_class=class_name(name), dependencies=deps,
                        folder=name, description=f"Benchmark pack {name}", license="Apache-2.0")


def run(cmd: list[str], env: dict[str, str], what: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs of each command (median reported).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (printed) for inspection.")
    args = parser.parse_args()

    from tests.registry_server.conftest import settings_for
    from tests.registry_server.helpers import Hub
    from tests.registry_server.servers import RegistryProcess

    work = Path(tempfile.mkdtemp(prefix="hearth-bench-install-"))
    wheels = work / "wheels"
    wheels.mkdir()
    for dep in PYTHON_DEPS:
        python_wheel(wheels, dep, script=False)
    settings = settings_for(work / "registry")
    settings.max_upload_bytes = 10 * 1024 * 1024
    server = RegistryProcess(settings).start()
    hub = Hub(server.url, settings)
    comfy = [sys.executable, "-c", "import sys; from hearth.cli.main import main; sys.exit(main(sys.argv[1:]))"]
    env = {**os.environ, "HEARTH_HOME": str(work / "home"), "COMFY_CONFIG": str(work / "config.toml"),
           "COMFY_REGISTRY_URL": server.url, "COMFY_PYPI_URL": "none", "COMFY_FIND_LINKS": str(wheels),
           "PYTHONPATH": str(ROOT)}
    env.pop("COMFY_ENV", None)
    # Installed software has its bytecode cached; a sandbox that forbids writing it would time the compiler.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        from hearth.registry_server.accounts import services as accounts

        with hub.session() as s:
            accounts.create_user(s, "bench-owner")
            accounts.create_publisher(s, PUBLISHER, "bench-owner")
            accounts.set_trust(s, PUBLISHER, "trusted", "bench")  # an untrusted publisher's packs wait for review
            token, _ = accounts.create_token(s, None, PUBLISHER, "publish")
        for name, requires in PACKS.items():
            detail = hub.publish_dir(make_pack(work / "packs", name, requires), token)
            if detail["status"] != "active":
                raise SystemExit(f"{name} was not verified: {detail['status']} {detail.get('status_reason')}")
            # pip gets the very wheel the registry serves to uv, from the same local folder as the deps.
            wheel = hub.http.get(detail["wheel"])
            wheel.raise_for_status()
            (wheels / detail["wheel"].rsplit("/", 1)[1]).write_bytes(wheel.content)

        # Warm comfy's caches (uv's and the artifact cache) with one install nobody times.
        run([*comfy, "env", "create", "warm"], env, "comfy env create")
        run([*comfy, "install", "hbench-top", "--env", "warm"], env, "warm-up comfy install")

        comfy_times, pip_times, sync_times = [], [], []
        for i in range(args.repeat):
            run([*comfy, "env", "create", f"timed{i}"], env, "comfy env create")
            comfy_times.append(run([*comfy, "install", "hbench-top", "--env", f"timed{i}"], env, "comfy install"))
            venv = work / f"pip-venv-{i}"
            run([sys.executable, "-m", "venv", str(venv)], env, "python -m venv")
            pip_times.append(run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                  "--disable-pip-version-check", "--no-index", "--find-links", str(wheels),
                                  "hbench-top"], env, "pip install"))
        check = subprocess.run([str(work / "pip-venv-0" / "bin" / "python"), "-c",
                                "import hbench_top, hbench_a, hbench_b, hbench_c, " +
                                ", ".join(d.replace("-", "_") for d in PYTHON_DEPS)], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"pip's venv lacks part of the set: {check.stderr.strip()}")
        nodes = subprocess.run([*comfy, "nodes", "--env", "timed0", "--json"], env=env, capture_output=True,
                               text=True)
        if nodes.returncode != 0 or "HbenchTopNode" not in nodes.stdout or "HbenchCNode" not in nodes.stdout:
            raise SystemExit(f"comfy's environment lacks the packs' nodes: {nodes.stderr.strip()[-1000:]}")
        for _ in range(args.repeat):
            sync_times.append(run([*comfy, "sync", "--env", "timed0"], env, "comfy sync"))
    finally:
        hub.close()
        server.stop()
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    c, p, s = (statistics.median(x) for x in (comfy_times, pip_times, sync_times))
    print(f"{'command':<34}{'median_s':>10}{'min_s':>8}   runs")
    for label, times in (("pip install (baseline)", pip_times), ("comfy install", comfy_times),
                         ("comfy sync (no-op)", sync_times)):
        print(f"{label:<34}{statistics.median(times):>10.3f}{min(times):>8.3f}   "
              + " ".join(f"{t:.2f}" for t in times))
    print()
    print(f"install_ratio={c / p:.2f}  (comfy / pip medians, target <= 0.5; best runs: "
          f"{min(comfy_times) / min(pip_times):.2f})")
    print(f"noop_sync_s={s:.3f}  (target < 1)")
    print(f"set: 4 packs (1 + 3 pack dependencies), {len(PYTHON_DEPS)} Python dependencies; both caches warm, "
          f"no network; load average during the run {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

if __name__ == "__main__":
    main()
