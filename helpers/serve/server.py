"""A model server as a child process: a free port on 127.0.0.1, a log file, a readiness check before
the first call, and a stop that always happens (the `with` block's end, `stop()`, the kernel's exit,
or the death of the Python process that started it). Every engine of the course starts through here."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
from tqdm.auto import tqdm

from helpers import processes
from helpers.errors import CourseError

HOST = "127.0.0.1"  # never all interfaces: a course server is for this machine only
LOOPBACK = ("127.", "::1", "::ffff:127.")  # addresses a listening socket may have
ALL_INTERFACES = ("0.0.0.0", "::", "[::]", "*")
LOG_TAIL_LINES = 25
_RUNNING: dict[int, Server] = {}  # by pid: stopped at exit, and by stop_all()


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


class ServerError(CourseError):
    """A server that did not start or answer; the message quotes its log."""


def free_port() -> int:
    """A port nobody listens on now: the system picks it when we bind port 0."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


# On Linux every server is started through this launcher: it asks the kernel for SIGTERM when its parent
# (the Python that starts the server) dies, checks that parent is still the one it was started by, then
# becomes the server (exec). A killed notebook kernel thus leaves no orphan. No Python code runs between
# fork and exec in the parent's copy (preexec_fn is unsafe in a process with threads, as kernels are).
LAUNCHER = ("import ctypes, os, sys; ctypes.CDLL(None, use_errno=True).prctl(1, 15); "
            "os.getppid() == int(sys.argv[1]) or os._exit(70); os.execv(sys.argv[2], sys.argv[2:])")


def _launch(argv: list[str]) -> list[str]:
    """The command that starts `argv` tied to this process's life (Linux), or `argv` itself elsewhere,
    where the atexit stop is the guarantee. The parent-death signal comes when the thread that started
    the server ends: start servers from the main thread, as notebook cells run."""
    if sys.platform.startswith("linux"):
        return [sys.executable, "-c", LAUNCHER, str(os.getpid()), *argv]
    return argv


def _no_proxy_for_localhost() -> None:
    """Requests to 127.0.0.1 must not go through an HTTP proxy set for the internet (urllib and the
    openai SDK's httpx both read NO_PROXY)."""
    for var in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(var, "").split(",") if h]
        os.environ[var] = ",".join(dict.fromkeys([*hosts, HOST, "localhost"]))


class Server:
    """A running server. Use it as a context manager, or call stop(); `base_url` is what an OpenAI
    client takes, `model` the name requests must use."""

    def __init__(self, command: list[str], *, name: str, port: int, log_path: Path, model: str,
                 ready_path: str, env: dict | None, cwd: Path | None):
        self.command, self.name, self.port, self.model = command, name, port, model
        self.log_path, self.ready_path = Path(log_path), ready_path
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {' '.join(command)}\n".encode())
        self._log.flush()
        self.started = time.perf_counter()
        try:
            self.process = subprocess.Popen(_launch(command), stdout=self._log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
        except OSError as err:
            self._log.close()
            raise ServerError(f"Could not start {name}: {err}") from None
        self.pid = self.process.pid
        self.seconds_to_ready: float | None = None
        _RUNNING[self.pid] = self

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def ready(self) -> bool:
        """One readiness probe: our process is alive, it (or a child of it) listens on our port, and the ready
        path answers 200 there (never through a proxy). A stale server on the port does not count."""
        if not self.running() or self.port not in {port for _, port in self.listening()}:
            return False
        try:
            with _OPENER.open(self.url + self.ready_path, timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def listening(self) -> list[tuple[str, int]]:
        """(address, port) of every TCP socket our process and its children listen on."""
        try:
            root = psutil.Process(self.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        found = []
        for proc in family:
            try:
                sockets = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") else proc.connections("tcp")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            found += [(c.laddr.ip, c.laddr.port) for c in sockets if c.status == psutil.CONN_LISTEN]
        return found

    def check_served(self) -> None:
        """After readiness: every socket the server listens on is on loopback, and an OpenAI-compatible server
        lists our model. Otherwise stop it and say why."""
        exposed = [f"{ip}:{port}" for ip, port in self.listening() if not ip.startswith(LOOPBACK)]
        if exposed:
            self.stop()
            raise ServerError(f"{self.name} listens on {', '.join(exposed)}, beyond this machine, although it was told "
                              f"{HOST}; it was stopped. A course server must bind {HOST} only.")
        if self.model is None:
            return
        try:
            with _OPENER.open(f"{self.base_url}/models", timeout=10) as reply:
                served = [m.get("id") for m in json.loads(reply.read()).get("data", [])]
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError) as err:
            self.stop()
            raise ServerError(f"{self.name} answered {self.ready_path} but not /v1/models ({err}); it was stopped. "
                              f"The end of its log ({self.log_path}):\n{self.log_tail()}") from None
        if self.model not in served:
            self.stop()
            raise ServerError(f"{self.name} is up, but /v1/models lists {served}, not {self.model!r}: it serves another "
                              "model than the one asked for; it was stopped.")

    def wait_ready(self, timeout: float) -> float:
        """Poll until ready; seconds from start to ready. A server that exits or stays silent past
        `timeout` is stopped, and the error quotes the end of its log."""
        with tqdm(desc=f"starting {self.name}", bar_format="{desc}: {elapsed}", leave=False) as bar:
            while not self.ready():
                if self.process.poll() is not None:
                    self.stop()
                    raise ServerError(f"{self.name} exited with code {self.process.returncode} while starting. "
                                      f"The end of its log ({self.log_path}):\n{self.log_tail()}")
                if time.perf_counter() - self.started > timeout:
                    self.stop()
                    raise ServerError(f"{self.name} did not answer {self.ready_path} within {timeout:.0f} s "
                                      f"and was stopped. The end of its log ({self.log_path}):\n{self.log_tail()}")
                bar.update()
                time.sleep(0.2)
        self.seconds_to_ready = time.perf_counter() - self.started
        return self.seconds_to_ready

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the server's whole process group (also when the server itself has already exited
        and left children), wait for all of it, kill what lingers after `grace`; close its log. The
        server stays listed for stop_all until it is gone."""
        processes.stop_group(self.process, grace)
        self._log.close()
        _RUNNING.pop(self.pid, None)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else f"stopped ({self.process.returncode})"
        return f"<{self.name} {state} at {self.base_url}, model {self.model!r}, log {self.log_path}>"


def program(name: str) -> str:
    """A bare program name as a path: first beside this Python (its environment's bin folder, also when
    that folder is not on PATH, as in many notebook kernels), then on PATH."""
    if os.sep in name:
        return name
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not found:
        raise ServerError(f"The program {name!r} was not found beside {sys.executable} nor on PATH. Install it "
                          "(`make install` installs the course's), or give its full path.")
    return found


def start(command: list[str], *, name: str, log_path: str | Path, model: str | None, port: int = 0,
          ready_path: str = "/health", timeout: float = 180.0, env: dict | None = None,
          cwd: str | Path | None = None) -> Server:
    """Start `command` and wait until `ready_path` answers. The command must carry "{host}" and "{port}" where
    the server takes them: start fills in 127.0.0.1 and a port, and refuses a command without "{host}" or one
    that names every interface. A bare program name is found as `program` says.

    Ready means: our process listens on the port, `ready_path` answers 200, every socket it listens on is on
    loopback, and, where `model` is given (an OpenAI-compatible server), /v1/models lists it. port=0 picks a
    free port; a port given explicitly must be free, or the error says how to choose another. A server that
    does not become ready is stopped. Each attempt keeps its own log (`log_path`, then NAME.retry1.log, ...)."""
    _no_proxy_for_localhost()
    check_host(command)
    if port and port_in_use(port):
        raise ServerError(f"Port {port} on {HOST} is already in use, perhaps by a server an earlier run left. "
                          "Stop it, or pass port=0 to let the course pick a free port.")
    log_path = Path(log_path)
    for attempt in range(3):  # a port picked free can be taken before the server binds it: pick again
        chosen = port or free_port()
        argv = [program(command[0])] + [part.replace("{port}", str(chosen)).replace("{host}", HOST) for part in command[1:]]
        log = log_path if attempt == 0 else log_path.with_name(f"{log_path.stem}.retry{attempt}{log_path.suffix}")
        server = Server(argv, name=name, port=chosen, log_path=log, model=model, ready_path=ready_path,
                        env=env, cwd=Path(cwd) if cwd else None)
        try:
            server.wait_ready(timeout)
            server.check_served()
            return server
        except ServerError:
            if port or attempt == 2 or "address already in use" not in server.log_tail().lower():
                raise
        except BaseException:  # an interrupted start (Ctrl-C, the kernel's stop button) leaves nothing running
            server.stop()
            raise
    raise AssertionError("unreachable")


def check_host(command: list[str]) -> None:
    """A course server's command names its host as "{host}" (filled in with 127.0.0.1), and no address that
    would open it to every interface."""
    if not any("{host}" in part for part in command[1:]):
        raise ServerError(f"{' '.join(command)}: the command carries no host. Write it as \"{{host}}\" where the "
                          f"server takes its address (for example \"--host\", \"{{host}}\"): the course fills in {HOST}.")
    wide = [part for part in command[1:] if any(part == a or part.endswith(f"={a}") for a in ALL_INTERFACES)]
    if wide:
        raise ServerError(f"{' '.join(command)}: {wide[0]} would open the server to every interface; a course server "
                          f"binds {HOST} only (write \"{{host}}\").")


def stop_all() -> list[int]:
    """Stop every server this process started and has not stopped; their pids."""
    pids = list(_RUNNING)
    for server in list(_RUNNING.values()):
        server.stop()
    return pids


atexit.register(stop_all)
