"""The server helper: a real child process on 127.0.0.1, ready before the first call, and always
stopped (stop(), a `with` block, the end of the Python that started it, even a killed one)."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from helpers.env import ROOT
from helpers.serve import server

DEADLINE = 20.0  # seconds a process gets to go away before a test fails loudly


def static_server(folder, health=True):
    """Python's own HTTP server on a folder; GET /health answers 200 when the file exists."""
    folder.mkdir(parents=True, exist_ok=True)
    if health:
        (folder / "health").write_text("ok\n")
    return [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", str(folder)]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (exited, not yet reaped by a parent that is gone or waiting) is gone too
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive after {DEADLINE} s"
        time.sleep(0.1)


def test_start_answers_on_localhost_then_stop_closes_the_port(tmp_path):
    srv = server.start(static_server(tmp_path / "site"), name="static", model="m", log_path=tmp_path / "logs" / "s.log")
    try:
        assert srv.running() and srv.seconds_to_ready > 0
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
        with urllib.request.urlopen(f"{srv.url}/health", timeout=5) as reply:
            assert reply.read() == b"ok\n"
        assert server.port_in_use(srv.port)
    finally:
        srv.stop()
    assert not srv.running() and not server.port_in_use(srv.port)
    assert "GET /health" in (tmp_path / "logs" / "s.log").read_text()  # its log is kept
    assert srv.pid not in server.stop_all()  # a stopped server is no longer tracked


def test_a_with_block_stops_the_server_even_when_it_raises(tmp_path):
    with pytest.raises(KeyError), server.start(static_server(tmp_path), name="s", model="m", log_path=tmp_path / "s.log") as srv:
        raise KeyError("a failing cell")
    assert not srv.running() and not server.port_in_use(srv.port)


def test_a_server_that_exits_while_starting_quotes_its_log(tmp_path):
    command = ["transformers", "serve", str(tmp_path / "no-such-model"), "--host", "127.0.0.1", "--port", "{port}"]
    with pytest.raises(server.ServerError) as err:
        server.start(command, name="transformers serve", model="x", log_path=tmp_path / "bad.log")
    message = str(err.value)
    assert "transformers serve exited with code 1 while starting" in message
    assert str(tmp_path / "bad.log") in message and "no-such-model" in message  # the log's own words
    assert server.stop_all() == []


def test_a_server_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    with pytest.raises(server.ServerError, match=r"did not answer /health within 5 s and was stopped") as err:
        server.start(static_server(tmp_path, health=False), name="silent", model="m", log_path=tmp_path / "s.log",
                     timeout=5)
    assert "GET /health" in str(err.value)  # the log shows what it did answer: 404s
    assert server.stop_all() == []


def test_a_server_that_exits_leaving_a_child_takes_the_child_along(tmp_path):
    child_pid = tmp_path / "child.pid"
    command = ["sh", "-c", f"sleep 300 & echo $! > {child_pid}; exit 3", "{port}"]
    with pytest.raises(server.ServerError, match="exited with code 3 while starting"):
        server.start(command, name="leaky", model="m", log_path=tmp_path / "s.log")
    wait_until_gone(int(child_pid.read_text()))


def test_an_interrupted_start_leaves_nothing_running(tmp_path, monkeypatch):
    started = []

    def interrupted(self):
        started.append(self.pid)
        raise KeyboardInterrupt  # the kernel's stop button while the server loads

    monkeypatch.setattr(server.Server, "ready", interrupted)
    with pytest.raises(KeyboardInterrupt):
        server.start(static_server(tmp_path), name="s", model="m", log_path=tmp_path / "s.log")
    assert started and server.stop_all() == []
    wait_until_gone(started[0])


def test_a_port_already_taken_is_refused_clearly_or_avoided(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(server.ServerError, match=f"Port {port} on 127.0.0.1 is already in use.*port=0"):
            server.start(static_server(tmp_path), name="s", model="m", log_path=tmp_path / "a.log", port=port)
        # a port picked free can be taken before the server binds it: the next pick is used
        picks = iter([port, server.free_port()])
        monkeypatch.setattr(server, "free_port", lambda: next(picks))
        with server.start(static_server(tmp_path), name="s", model="m", log_path=tmp_path / "b.log") as srv:
            assert srv.port != port and srv.ready()
        assert "Address already in use" in (tmp_path / "b.log").read_text()


def test_a_missing_program_is_named(tmp_path):
    with pytest.raises(server.ServerError, match="'no-such-server' was not found beside"):
        server.start(["no-such-server", "{port}"], name="x", model="m", log_path=tmp_path / "x.log")


SCRIPT = textwrap.dedent("""
    import sys, time
    from helpers.serve import server
    srv = server.start([sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", sys.argv[1]],
                       name="s", model="m", log_path=sys.argv[1] + "/s.log")
    print(srv.pid, srv.port, flush=True)
    if sys.argv[2] == "hang":
        time.sleep(600)
""")


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_no_server_outlives_the_python_that_started_it(tmp_path, ending):
    """A kernel that ends normally stops its servers (atexit); one killed with SIGKILL takes them along
    (the parent-death signal), so no orphan keeps the port."""
    (tmp_path / "health").write_text("ok\n")
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path), "exit" if ending == "exit" else "hang"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pid, port = map(int, parent.stdout.readline().split())
    if ending == "kill":
        assert not gone(pid) and server.port_in_use(port)
        parent.send_signal(signal.SIGKILL)
    parent.wait(DEADLINE)
    wait_until_gone(pid)
    assert not server.port_in_use(port)


def test_vllm_is_looked_for_in_the_course_environment_wherever_the_notebook_runs(tmp_path):
    """Notebook 05's `vllm_venv` is empty by default, so its Vietnamese copy, one folder deeper, finds
    the same .venv-vllm; on a machine without CUDA the reason says so, whatever the environment."""
    import torch

    from helpers.serve import vllm

    assert vllm.executable("") == vllm.executable() == ROOT / ".venv-vllm" / "bin" / "vllm"
    assert vllm.executable(tmp_path) == tmp_path / "bin" / "vllm"
    assert "dry run" in vllm.why_not(True, "")
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in vllm.why_not(False, "")
