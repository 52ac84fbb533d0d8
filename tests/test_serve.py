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
    return [sys.executable, "-m", "http.server", "{port}", "--bind", "{host}", "--directory", str(folder)]


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


def wait_until_closed(port: int) -> None:
    """A process shows as a zombie once its main thread has exited; its other threads (a threaded server's
    request handlers) may hold its sockets a moment longer."""
    deadline = time.monotonic() + DEADLINE
    while server.port_in_use(port):
        assert time.monotonic() < deadline, f"port {port} still accepts connections after {DEADLINE} s"
        time.sleep(0.1)


def test_start_answers_on_localhost_then_stop_closes_the_port(tmp_path):
    srv = server.start(static_server(tmp_path / "site"), name="static", model=None, log_path=tmp_path / "logs" / "s.log")
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
    with pytest.raises(KeyError), server.start(static_server(tmp_path), name="s", model=None, log_path=tmp_path / "s.log") as srv:
        raise KeyError("a failing cell")
    assert not srv.running() and not server.port_in_use(srv.port)


def test_a_server_that_exits_while_starting_quotes_its_log(tmp_path):
    command = ["transformers", "serve", str(tmp_path / "no-such-model"), "--host", "{host}", "--port", "{port}"]
    with pytest.raises(server.ServerError) as err:
        server.start(command, name="transformers serve", model="x", log_path=tmp_path / "bad.log")
    message = str(err.value)
    assert "transformers serve exited with code 1 while starting" in message
    assert str(tmp_path / "bad.log") in message and "no-such-model" in message  # the log's own words
    assert server.stop_all() == []


def test_a_server_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    with pytest.raises(server.ServerError, match=r"did not answer /health within 5 s and was stopped") as err:
        server.start(static_server(tmp_path, health=False), name="silent", model=None, log_path=tmp_path / "s.log",
                     timeout=5)
    assert "GET /health" in str(err.value)  # the log shows what it did answer: 404s
    assert server.stop_all() == []


def test_a_server_that_exits_leaving_a_child_takes_the_child_along(tmp_path):
    child_pid = tmp_path / "child.pid"
    command = ["sh", "-c", f"sleep 300 & echo $! > {child_pid}; exit 3", "{host}", "{port}"]
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
        server.start(static_server(tmp_path), name="s", model=None, log_path=tmp_path / "s.log")
    assert started and server.stop_all() == []
    wait_until_gone(started[0])


def test_a_port_already_taken_is_refused_clearly_or_avoided(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(server.ServerError, match=f"Port {port} on 127.0.0.1 is already in use.*port=0"):
            server.start(static_server(tmp_path), name="s", model=None, log_path=tmp_path / "a.log", port=port)
        # a port picked free can be taken before the server binds it: the next pick is used
        picks = iter([port, server.free_port()])
        monkeypatch.setattr(server, "free_port", lambda: next(picks))
        with server.start(static_server(tmp_path), name="s", model=None, log_path=tmp_path / "b.log") as srv:
            assert srv.port != port and srv.ready()
        assert "Address already in use" in (tmp_path / "b.log").read_text()


def test_a_missing_program_is_named(tmp_path):
    with pytest.raises(server.ServerError, match="'no-such-server' was not found beside"):
        server.start(["no-such-server", "{host}", "{port}"], name="x", model="m", log_path=tmp_path / "x.log")


SCRIPT = textwrap.dedent("""
    import sys, time
    from helpers.serve import server
    srv = server.start([sys.executable, "-m", "http.server", "{port}", "--bind", "{host}", "--directory", sys.argv[1]],
                       name="s", model=None, log_path=sys.argv[1] + "/s.log")
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
    wait_until_closed(port)


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


FAKE_OPENAI = textwrap.dedent("""
    import http.server, json, sys
    host, port, served = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"ok" if self.path == "/health" else json.dumps({"data": [{"id": served}]}).encode()
            self.send_response(200 if self.path in ("/health", "/v1/models") else 404)
            self.end_headers()
            self.wfile.write(body)

    http.server.HTTPServer((host, port), Handler).serve_forever()
""")


def fake_openai(served: str, everywhere: bool = False) -> list[str]:
    """An OpenAI-compatible server in a few lines: /health, and /v1/models listing `served`; `everywhere` binds
    every interface whatever host it is given."""
    code = FAKE_OPENAI.replace("((host, port)", '(("", port)') if everywhere else FAKE_OPENAI
    return [sys.executable, "-c", code, "{host}", "{port}", served]


@pytest.mark.parametrize("command, why", [
    ([sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"], "carries no host"),
    ([sys.executable, "-m", "http.server", "{port}", "--bind", "0.0.0.0", "--directory", "{host}"], "every interface"),
    (["vllm", "serve", "m", "--host={host}", "--port", "{port}", "--host=::"], "every interface"),
], ids=["no host", "all interfaces", "all interfaces, IPv6"])
def test_a_command_that_could_bind_beyond_this_machine_is_refused_before_it_starts(tmp_path, command, why):
    with pytest.raises(server.ServerError, match=why):
        server.start(command, name="wide", model=None, log_path=tmp_path / "wide.log")
    assert not (tmp_path / "wide.log").exists() and server.stop_all() == []  # nothing was started


def test_a_server_that_binds_every_interface_anyway_is_stopped(tmp_path):
    """The command passes "{host}" but the program binds 0.0.0.0 regardless: the socket check catches it."""
    with pytest.raises(server.ServerError, match=r"listens on 0\.0\.0\.0:\d+, beyond this machine.*stopped") as err:
        server.start(fake_openai("m", everywhere=True), name="wide", model="m", log_path=tmp_path / "w.log")
    assert "A course server must bind 127.0.0.1 only" in str(err.value) and server.stop_all() == []


def test_ready_means_our_model_on_our_process_not_whatever_answers_the_port(tmp_path):
    with pytest.raises(server.ServerError, match=r"lists \['other-model'\], not 'sql'"):
        server.start(fake_openai("other-model"), name="fake", model="sql", log_path=tmp_path / "f.log")
    with server.start(fake_openai("sql"), name="fake", model="sql", log_path=tmp_path / "g.log") as ours:
        assert ours.listening() == [("127.0.0.1", ours.port)]
        # a process of ours that never binds, on a port a stale server answers, is not ready
        sleeper = server.Server([sys.executable, "-c", "import time; time.sleep(60)"], name="late", port=ours.port,
                                log_path=tmp_path / "late.log", model="sql", ready_path="/health", env=None, cwd=None)
        try:
            assert sleeper.running() and not sleeper.ready()
        finally:
            sleeper.stop()


def test_each_attempt_keeps_its_own_log(tmp_path):
    marker = tmp_path / "tried"
    script = (f"if [ ! -f {marker} ]; then touch {marker}; echo 'OSError: [Errno 98] Address already in use'; exit 1; fi; "
              f"exec {sys.executable} -m http.server \"$1\" --bind \"$0\" --directory {tmp_path}")
    (tmp_path / "health").write_text("ok\n")
    with server.start(["sh", "-c", script, "{host}", "{port}"], name="flaky", model=None, log_path=tmp_path / "s.log") as srv:
        assert srv.log_path == tmp_path / "s.retry1.log" and srv.ready()
    assert "Address already in use" in (tmp_path / "s.log").read_text()
    assert "GET /health" in (tmp_path / "s.retry1.log").read_text()
