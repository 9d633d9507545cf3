"""Each isolation property of contract B, checked from inside a real host: HOME and the temporary folders are
empty, the environment holds no secret, loopback listeners of Hearth's process cannot be reached (unless the pack
was allowed the network), only ``writable`` is writable, processes a node starts die with the host, and memory is
limited; plus the probe's reason when the machine cannot make namespaces."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from hearth.sandbox.host import HostLimits, PackHostError, probe_isolation, unavailable_message


def test_home_files_are_out_of_reach_and_home_is_private_and_empty(make_host):
    secret = Path.home() / f".hearth-host-test-{uuid.uuid4().hex}"
    ssh = Path.home() / ".ssh"
    secret.write_text("PRIVATE KEY")
    try:
        host = make_host("snoop")
        (text,) = host.call("read_file", "run", {"x": str(secret)})
        assert text.startswith("error: FileNotFoundError"), text
        (listing,) = host.call("listdir", "run", {"x": str(Path.home())})
        # Only the way to a Python that lives under HOME (re-exposed read-only) is there, nothing of the user's.
        pythons = {Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
        way = {p.relative_to(Path.home()).parts[0] for p in pythons if p.is_relative_to(Path.home())}
        assert secret.name not in listing and set(listing) <= way, listing
        if ssh.is_dir():
            (keys,) = host.call("listdir", "run", {"x": str(ssh)})
            assert isinstance(keys, str) and keys.startswith("error")
        for folder in ("/home", "/var/tmp", "/dev/shm"):
            (entries,) = host.call("listdir", "run", {"x": folder})
            assert entries == [] or isinstance(entries, str), (folder, entries)
        (info,) = host.call("info", "run", {})
        assert info["home"] == "/tmp/home" and info["cwd"] == "/tmp/home"
        assert info["pid"] == 1  # pid 1 of its own pid namespace
    finally:
        secret.unlink()


def test_the_environment_holds_no_token(make_host, monkeypatch):
    monkeypatch.setenv("HEARTH_TEST_API_TOKEN", "s3cr3t-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    host = make_host("envsnoop")
    (info,) = host.call("info", "run", {})
    # THP_MEM_ALLOC_ENABLE is the worker's own, set when it imports hearth (huge pages for tensors), not the host's.
    assert sorted(info["env"]) == ["HOME", "LANG", "PATH", "THP_MEM_ALLOC_ENABLE", "TMPDIR"]
    assert "s3cr3t" not in repr(info) and "aws-secret" not in repr(info)


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    got: list[bytes] = []

    def accept() -> None:
        server.settimeout(10)
        try:
            conn, _ = server.accept()
            got.append(conn.recv(100))
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], got
    server.close()


def test_a_loopback_listener_of_hearths_process_cannot_be_reached(make_host, listener):
    port, got = listener
    host = make_host("netsnoop")
    (result,) = host.call("connect", "run", {"x": ("127.0.0.1", port)})
    assert result.startswith("error: "), result
    assert got == []


def test_a_pack_allowed_the_network_by_name_reaches_it(make_host, listener):
    port, got = listener
    host = make_host("apinode", network=True)
    (result,) = host.call("connect", "run", {"x": ("127.0.0.1", port)})
    assert result == "connected"
    for _ in range(100):
        if got:
            break
        time.sleep(0.02)
    assert got == [b"stolen"]
    (info,) = host.call("info", "run", {})
    assert sorted(info["env"]) == ["HOME", "LANG", "PATH", "THP_MEM_ALLOC_ENABLE", "TMPDIR"]  # network, nothing else


def test_unix_sockets_keyrings_and_devices_of_the_machine_are_out_of_reach(make_host, tmp_path):
    path = tmp_path / "service.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    try:
        host = make_host("unixsnoop", readable=(str(tmp_path),))
        (result,) = host.call("connect_unix", "run", {"x": str(path)})
        assert result == "error: PermissionError: Permission denied", result
        assert host.call("pair", "run", {"x": 1}) == (b"ok",)  # socketpair (asyncio, pipes) still works
        result, error = host.call("keyctl", "run", {"x": 1})
        assert result == -1 and error == "Permission denied"
        (devices,) = host.call("listdir", "run", {"x": "/dev"})
        gpu = {d for d in devices if d.startswith(("nvidia", "dri", "kfd"))}
        assert set(devices) - gpu == {"null", "zero", "full", "random", "urandom", "shm", "pts", "fd", "stdin",
                                      "stdout", "stderr"}, devices
        assert host.call("listdir", "run", {"x": "/dev/pts"}) == ([],)
        assert host.call("write_file", "run", {"x": ("/dev/null", b"x")}) == ("ok",)
        (text,) = host.call("write_file", "run", {"x": ("/dev/planted", b"x")})
        assert text.startswith("error: OSError: [Errno 30]"), text
    finally:
        server.close()


def test_only_writable_folders_can_be_written(make_host, pack_dir, tmp_path):
    scratch, outside = tmp_path / "scratch", tmp_path / "outside"
    outside.mkdir()
    host = make_host("writer", readable=(str(outside),), writable=(str(scratch),))
    assert host.call("write_file", "run", {"x": (str(scratch / "ok.txt"), b"fine")}) == ("ok",)
    assert (scratch / "ok.txt").read_bytes() == b"fine"
    for target in (outside / "no.txt", pack_dir / "evil.py", Path(__file__).with_name("planted.py"),
                   Path.home() / ".bashrc-planted"):
        (result,) = host.call("write_file", "run", {"x": (str(target), b"x")})
        assert result.startswith("error: OSError: [Errno 30] Read-only file system") or \
            result.startswith("error: "), (target, result)
        assert not target.exists() or target.read_bytes() != b"x"
    # /tmp inside is the host's own: writable there, invisible here
    assert host.call("write_file", "run", {"x": ("/tmp/private.txt", b"x")}) == ("ok",)
    assert not Path("/tmp/private.txt").exists()


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _wait_started(marker: str) -> list[int]:
    """Popen returns while exec is still setting up the new program's arguments: give /proc a moment."""
    for _ in range(100):
        found = _processes_with(marker)
        if found:
            return found
        time.sleep(0.02)
    return []


def _wait_gone(marker: str) -> list[int]:
    for _ in range(100):
        left = _processes_with(marker)
        if not left:
            return left
        time.sleep(0.05)
    return _processes_with(marker)


def test_a_process_a_node_starts_lives_no_longer_than_the_host(make_host):
    seconds = f"{900 + uuid.uuid4().int % 99}.{uuid.uuid4().int % 997}"
    host = make_host("spawner")
    if not shutil.which("sleep"):
        pytest.skip("no sleep binary")
    (pid,) = host.call("spawn", "run", {"x": seconds})
    assert len(_wait_started(seconds)) == 1, (pid, seconds)
    host.close()
    assert _wait_gone(seconds) == []


def test_the_host_dies_with_hearths_process(pack_dir, tmp_path):
    import subprocess

    seconds = f"{800 + uuid.uuid4().int % 99}.{uuid.uuid4().int % 997}"
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from hearth.sandbox.host import HostConfig, PackHost\n"
        f"h = PackHost(HostConfig(name='orphan', entry='hosttestpack:load', readable=({str(pack_dir)!r},), "
        f"sys_path=({str(pack_dir)!r},)))\n"
        f"h.call('spawn', 'run', {{'x': {seconds!r}}})\n"
        "print(h.pid, flush=True)\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        host_pid = int(parent.stdout.readline())
        assert os.path.exists(f"/proc/{host_pid}")
        assert len(_wait_started(seconds)) == 1, seconds
    finally:
        parent.kill()
        parent.wait()
    assert _wait_gone(seconds) == []
    for _ in range(100):
        if not os.path.exists(f"/proc/{host_pid}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{host_pid}")


def test_no_host_outlives_an_interpreter_that_exits_without_closing_it(pack_dir, tmp_path):
    import subprocess

    seconds = f"{700 + uuid.uuid4().int % 99}.{uuid.uuid4().int % 997}"
    script = tmp_path / "forgetful.py"
    script.write_text(
        "from hearth.sandbox.host import HostConfig, PackHost\n"
        f"h = PackHost(HostConfig(name='forgotten', entry='hosttestpack:load', readable=({str(pack_dir)!r},), "
        f"sys_path=({str(pack_dir)!r},)))\n"
        f"h.call('spawn', 'run', {{'x': {seconds!r}}})\n"
        "print(h.pid, flush=True)\n")  # and exits, never calling close()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    host_pid = int(done.stdout)
    assert _wait_gone(seconds) == []
    assert not os.path.exists(f"/proc/{host_pid}") or _proc_state(host_pid) == "Z"


def _proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_memory_bomb_fails_its_node_in_one_line_and_the_next_call_works(make_host):
    host = make_host("bomber", limits=HostLimits(memory_bytes=1024**3))
    with pytest.raises(PackHostError) as caught:
        host.call("memory_bomb", "run", {"x": 4 * 1024**3})
    assert str(caught.value) == "pack 'bomber': memory_bomb ran out of memory (the host's limit is 1 GiB)"
    assert host.call("memory_bomb", "run", {"x": 1024}) == (1024,)


def test_processes_open_files_and_file_sizes_are_limited(make_host, tmp_path):
    host = make_host("greedy", writable=(str(tmp_path),),
                     limits=HostLimits(max_processes=24, open_files=64, file_size_bytes=1024**2))
    # RLIMIT_NPROC does not bind processes of the real root user (the kernel exempts it): the host's pid
    # namespace has its own pid_max, 301 + max_processes, which does.
    (result,) = host.call("spawn_many", "run", {"x": 400})
    assert result.startswith("error after ") and result.endswith("BlockingIOError"), result
    assert int(result.split()[2].rstrip(":")) < (24 if os.getuid() else 301 + 24)
    (result,) = host.call("open_many", "run", {"x": 100})
    assert result.startswith("error after ") and result.endswith("OSError: Too many open files"), result
    (result,) = host.call("write_file", "run", {"x": (str(tmp_path / "big"), b"x" * (2 * 1024**2))})
    assert result == "error: OSError: [Errno 27] File too large", result
    for _ in range(3):  # the host is fine, and keeps room for processes after its pids wrapped
        assert host.call("spawn_many", "run", {"x": 20}) == ("started 20",)


def test_the_probe_says_why_when_the_namespaces_cannot_be_made():
    if not shutil.which("unshare"):
        pytest.skip("needs util-linux unshare to take the right to make namespaces away")
    # In a user namespace of its own whose namespace limits are all 0, no unshare can succeed.
    wrapper = ("unshare", "-U", "-r", "sh", "-c",
               "for f in user net mnt pid ipc uts cgroup; do echo 0 > /proc/sys/user/max_${f}_namespaces; done; "
               'exec "$@"', "sh")
    ok, reason = probe_isolation(wrapper)
    assert ok is False
    assert reason.startswith("cannot create the namespaces isolation needs: unshare(CLONE_NEWUSER) failed: "
                             "No space left on device"), reason
    assert "user.max_user_namespaces" in reason
    message = unavailable_message("evil", reason)
    assert message.startswith("pack 'evil' cannot run isolated here: cannot create the namespaces")
    assert message.endswith("; run it unisolated at your own risk with --isolation off (or comfy trust evil)")
    assert "\n" not in message
