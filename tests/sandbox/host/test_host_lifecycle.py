"""A host's life: interrupt (cooperative, and a hang killed past the grace), crashes of every kind fail the call in
one line naming the pack, the node and the cause, and the next call starts a fresh host; a start that hangs or an
entry that fails; a host that breaks the protocol is killed; close() leaves nothing behind."""

from __future__ import annotations

import os
import threading
import time

import pytest

from hearth.sandbox.host import HostInterrupted, HostLimits, PackHostError


def _interrupt_after(host, seconds: float) -> threading.Thread:
    def later() -> None:
        time.sleep(seconds)
        host.interrupt()

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    return thread


def test_an_interrupt_reaches_the_node_which_stops(make_host):
    host = make_host("stopper")
    pid = host.pid or host.describe() and host.pid
    _interrupt_after(host, 0.2)
    with pytest.raises(HostInterrupted) as caught:
        host.call("wait_for_interrupt", "run", {})
    assert str(caught.value) == "pack 'stopper': wait_for_interrupt was interrupted"
    assert host.pid == pid  # it stopped in time: same host


def test_an_interrupt_cancels_an_awaiting_async_node_at_once(make_host):
    host = make_host("awaiter", limits=HostLimits(interrupt_grace_s=10))
    pid = host.pid or host.describe() and host.pid
    _interrupt_after(host, 0.2)
    started = time.monotonic()
    with pytest.raises(HostInterrupted) as caught:
        host.call("async_wait", "run", {})
    assert time.monotonic() - started < 2  # cancelled in the host, long before the 10 s grace
    assert str(caught.value) == "pack 'awaiter': async_wait was interrupted"
    assert host.pid == pid and host.call("echo", "run", {"x": 2}) == (2,)


def test_the_flag_is_cleared_for_the_next_call(make_host):
    host = make_host("stopper2")
    _interrupt_after(host, 0.1)
    with pytest.raises(HostInterrupted):
        host.call("wait_for_interrupt", "run", {})
    assert host.call("echo", "run", {"x": 3}) == (3,)


def test_a_node_that_ignores_the_interrupt_is_killed_after_the_grace(make_host):
    host = make_host("hanger", limits=HostLimits(interrupt_grace_s=0.5))
    host.describe()
    first = host.pid
    _interrupt_after(host, 0.2)
    started = time.monotonic()
    with pytest.raises(HostInterrupted) as caught:
        host.call("hang", "run", {})
    assert 0.6 <= time.monotonic() - started < 5
    assert str(caught.value) == ("pack 'hanger': its host did not stop within 0.5 s of the interrupt while "
                                 "running hang; it was killed")
    assert not os.path.exists(f"/proc/{first}/status") or _state(first) == "Z"
    assert host.call("echo", "run", {"x": 1}) == (1,)
    assert host.pid != first


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.parametrize(("node", "kwargs", "cause"), [
    ("exit_now", {"x": 3}, "exited with code 3"),
    ("segfault", {}, "killed by SIGSEGV, a crash"),
])
def test_a_crash_fails_the_call_in_one_line_and_the_next_call_starts_a_fresh_host(make_host, node, kwargs, cause):
    host = make_host("crasher")
    host.describe()
    first = host.pid
    with pytest.raises(PackHostError) as caught:
        host.call(node, "run", kwargs)
    assert str(caught.value) == f"pack 'crasher': its host died ({cause}) while running {node}"
    assert not host.alive
    assert host.call("echo", "run", {"x": "again"}) == ("again",)
    assert host.alive and host.pid != first


def test_a_host_killed_from_outside_fails_the_running_call(make_host):
    host = make_host("victim")
    host.describe()

    def kill_soon() -> None:
        time.sleep(0.3)
        os.kill(host.pid, 9)

    threading.Thread(target=kill_soon, daemon=True).start()
    with pytest.raises(PackHostError) as caught:
        host.call("hang", "run", {})
    assert str(caught.value) == "pack 'victim': its host died (killed by SIGKILL) while running hang"


def test_a_start_that_hangs_fails_after_the_start_timeout(make_host):
    host = make_host("slowstart", args={"hang": True}, limits=HostLimits(start_timeout_s=1.0))
    started = time.monotonic()
    with pytest.raises(PackHostError) as caught:
        host.describe()
    assert time.monotonic() - started < 5
    assert str(caught.value) == "pack 'slowstart': its host did not start within 1 s"
    assert not host.alive


def test_an_entry_that_fails_is_one_line(make_host):
    host = make_host("broken", args={"fail": True})
    with pytest.raises(PackHostError) as caught:
        host.describe()
    assert str(caught.value) == ("pack 'broken': its entry hosttestpack:load failed: ImportError: this pack needs a "
                                 "module it does not have")


def test_a_host_that_writes_garbage_on_the_wire_is_killed(make_host, pack_dir):
    host = make_host("liar")
    host.describe()
    first = host.pid
    with pytest.raises(PackHostError) as caught:
        host.call("raw_write", "run", {"x": b"\x05\x00\x00\x00\x00\x00\x00\x00Zjunk"})
    assert str(caught.value) == ("pack 'liar': its host broke the protocol while running raw_write (unknown tag "
                                 "b'Z' at byte 0); it was killed")
    assert host.call("echo", "run", {"x": 1}) == (1,) and host.pid != first


def test_close_from_another_thread_ends_the_running_call_in_one_line(make_host):
    host = make_host("closedmid")
    host.describe()
    threading.Timer(0.3, host.close).start()
    with pytest.raises(PackHostError) as caught:
        host.call("hang", "run", {})
    assert str(caught.value) in ("pack 'closedmid': its host was closed while running hang",
                                 "pack 'closedmid': its host died (killed by SIGKILL) while running hang")


def test_close_leaves_no_process_and_a_closed_host_refuses_calls(make_host):
    host = make_host("closer")
    host.describe()
    pid = host.pid
    host.close()
    for _ in range(100):
        if _state(pid) == "gone":
            break
        time.sleep(0.02)
    assert _state(pid) == "gone"
    with pytest.raises(PackHostError, match="pack 'closer': its host was closed"):
        host.call("echo", "run", {"x": 1})
