"""Untrusted Python, such as a learner's grader, run in a process of its own with limits: wall time,
CPU time, memory, output size, no network, no new processes and no writes outside its own temporary
folder. The grader's `grade(sample, item)` is called once per (sample, item) pair, all pairs in one child
process (a process start costs about a tenth of a second); each result is a number in [0, 1] or an error
that says what went wrong.

The limits contain mistakes (a loop, a crash, a flood of output, a runaway allocation, a stray write or
request), as a provider's grader service does; they are not a security boundary against code written to
escape them: it runs as the learner, on the learner's machine.

    results = sandbox.grade(source, [(sample, item), ...], limits=sandbox.Limits(seconds=10))
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass

from helpers.processes import stop_group


@dataclass(frozen=True)
class Limits:
    """What one grader process may use: wall seconds for all its pairs, CPU seconds, address space
    (MiB), bytes it may print, bytes of source code. The defaults are OpenAI's documented limits of a python
    grader (2 minutes, 2 GB, source under 256 kB); the output limit is the course's (none is documented)."""
    seconds: float = 120.0
    cpu_seconds: int = 120
    memory_mib: int = 2048
    output_bytes: int = 64 * 1024
    source_bytes: int = 256 * 1024


DEFAULT = Limits()


@dataclass
class Result:
    """One grade: `score` in [0, 1], or `error` (runtime, unresponsive, output, invalid_score, server)
    with `details` saying what happened and what to do. A failed grade scores 0, as at the providers."""
    score: float = 0.0
    error: str | None = None
    details: str = ""
    seconds: float = 0.0


# The child's own code: denies the operations a grader may not do (through Python's audit hooks, which
# code cannot remove once added), then imports the grader and grades each pair, writing one JSON line
# per pair to its result pipe. Everything the grader prints goes to stdout, which the parent caps.
RUNNER = textwrap.dedent('''
    import json, math, os, resource, sys, traceback

    # The limits, set by the child on itself before any grader code runs (hard = soft: it cannot raise them).
    # Set here rather than in a preexec_fn, which is unsafe in a parent with threads (the emulator's jobs).
    memory, cpu, files = (int(v) for v in sys.argv[2:5])
    for limit, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_FSIZE, files),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    RESULTS = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    ALLOWED = os.path.realpath(os.getcwd())
    DENIED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.forkpty",
              "pty.", "os.kill", "os.killpg", "signal.")
    WRITES = ("os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown", "os.link",
              "os.symlink", "os.truncate", "os.utime", "shutil.", "os.chdir")

    def inside(path):
        try:
            real = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else ALLOWED)
        except (TypeError, ValueError):
            return False
        return real == ALLOWED or real.startswith(ALLOWED + os.sep)

    def guard(event, args):
        if event.startswith(DENIED):
            raise PermissionError(f"a grader may not use {event} (no network, no processes)")
        if event == "open" and args and args[0] is not None:
            mode, flags = args[1] or "r", args[2] or 0
            writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writing and not inside(args[0]):
                raise PermissionError(f"a grader may write only in its temporary folder, not {args[0]}")
        if event.startswith(WRITES) and args and not all(inside(a) for a in args[:2] if isinstance(a, (str, bytes))):
            raise PermissionError(f"a grader may change files only in its temporary folder ({event} {args[0]})")

    def trace(err):
        """The grader's own frames of a traceback, and the error: not the runner's."""
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == "grader.py"]
        return "".join(traceback.format_list(frames) + traceback.format_exception_only(type(err), err))

    job = json.load(sys.stdin)
    sys.addaudithook(guard)
    namespace = {"__name__": "grader"}
    try:
        exec(compile(job["source"], "grader.py", "exec"), namespace)
        grade = namespace.get("grade")
        if not callable(grade):
            raise NameError("the source defines no function grade(sample, item)")
    except BaseException as err:
        RESULTS.write(json.dumps({"fatal": trace(err)}) + "\\n")
        sys.exit(0)
    for sample, item in job["pairs"]:
        try:
            score = grade(sample, item)
            RESULTS.write(json.dumps({"score": score if isinstance(score, (int, float)) and not isinstance(score, bool)
                                      else None, "returned": repr(score)[:200]}, allow_nan=True) + "\\n")
        except BaseException as err:
            RESULTS.write(json.dumps({"error": trace(err),
                                      "memory": isinstance(err, MemoryError)}) + "\\n")
''')


FILE_BYTES = 16 * 1024 * 1024  # the largest file a grader may write in its temporary folder


def _read_capped(stream, cap: int, out: list, overflow: threading.Event) -> None:
    """Read a child's output into `out`, keeping at most `cap` bytes; set `overflow` past that."""
    kept = 0
    while chunk := stream.read(65536):
        if kept < cap:
            out.append(chunk[:cap - kept])
        kept += len(chunk)
        if kept > cap:
            overflow.set()
            return


def check_source(source: str, limits: Limits = DEFAULT) -> None:
    """Refuse source that cannot be a grader before starting a process: too long, or not Python
    that defines `grade(sample, item)`. Raises ValueError naming the line."""
    if len(source.encode()) > limits.source_bytes:
        raise ValueError(f"the grader's source is {len(source.encode()):,} bytes; the limit is {limits.source_bytes:,}")
    import ast
    try:
        tree = ast.parse(source, "grader.py")
    except SyntaxError as err:
        raise ValueError(f"the grader's source does not parse: line {err.lineno}: {err.msg}") from None
    if not any(isinstance(node, ast.FunctionDef) and node.name == "grade" for node in tree.body):
        raise ValueError("the grader's source must define a top-level function grade(sample, item) that returns "
                         "a number in [0, 1]")


def grade(source: str, pairs: list[tuple[dict, dict]], limits: Limits = DEFAULT) -> list[Result]:
    """`grade(sample, item)` of `source` on each pair, in one child process under `limits`. A grader
    that loops is stopped after `limits.seconds` (every pair not graded by then is `unresponsive`), one
    that prints more than `limits.output_bytes` is stopped (`output`), one that raises is `runtime` for
    that pair, and a return value that is not a number in [0, 1] is `invalid_score`."""
    check_source(source, limits)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="grader-") as folder:
        read_end, write_end = os.pipe()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": folder, "TMPDIR": folder,
               "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
        limits_args = [str(limits.memory_mib * 1024 * 1024), str(limits.cpu_seconds), str(FILE_BYTES)]
        process = subprocess.Popen([sys.executable, "-I", "-c", RUNNER, str(write_end), *limits_args], cwd=folder,
                                   env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   pass_fds=(write_end,), start_new_session=True)
        os.close(write_end)
        printed, overflow = [], threading.Event()
        reader = threading.Thread(target=_read_capped, args=(process.stdout, limits.output_bytes, printed, overflow),
                                  daemon=True)
        reader.start()
        lines: list[str] = []
        collector = threading.Thread(target=lambda: lines.extend(os.fdopen(read_end).read().splitlines()), daemon=True)
        collector.start()
        try:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(json.dumps({"source": source, "pairs": pairs}).encode())
                process.stdin.close()
            deadline = start + limits.seconds
            while process.poll() is None and time.perf_counter() < deadline and not overflow.is_set():
                time.sleep(0.01)
            stopped = process.poll() is None
        finally:
            stop_group(process, grace=0.5)
            reader.join(5)
            collector.join(5)
    seconds = time.perf_counter() - start
    return _results(lines, len(pairs), stopped, overflow.is_set(), process.returncode, limits, seconds,
                    b"".join(printed).decode(errors="replace"))


def _results(lines, count, stopped, overflow, returncode, limits, seconds, printed) -> list[Result]:
    """One Result per pair from the child's result lines and how it ended."""
    records = [json.loads(line) for line in lines if line.strip()]
    if records and "fatal" in records[0]:
        return [Result(error="runtime", details=f"the grader failed to load:\n{records[0]['fatal']}", seconds=seconds)] * count
    results = []
    for record in records[:count]:
        if "error" in record:
            kind = "server" if record.get("memory") else "runtime"
            hint = f" (more than the {limits.memory_mib} MiB a grader may use)" if record.get("memory") else ""
            results.append(Result(error=kind, details=f"grade() raised{hint}:\n{record['error']}"))
        elif record["score"] is None or not math.isfinite(record["score"]) or not 0 <= record["score"] <= 1:
            results.append(Result(error="invalid_score",
                                  details=f"grade() returned {record['returned']}; it must return a number in [0, 1]"))
        else:
            results.append(Result(score=float(record["score"])))
    if len(results) < count:  # the child stopped before grading every pair
        if overflow:
            why = ("output", f"the grader printed more than {limits.output_bytes:,} bytes and was stopped; print less "
                             f"(its output began: {printed[:200]!r})")
        elif stopped:
            why = ("unresponsive", f"the grader did not finish within {limits.seconds:g} s and was stopped; "
                                   "look for a loop that never ends")
        elif returncode is not None and returncode < 0:
            signal_name = {-9: "SIGKILL", -24: "SIGXCPU", -25: "SIGXFSZ", -11: "SIGSEGV"}.get(returncode, str(-returncode))
            why = ("unresponsive" if returncode == -24 else "server",
                   f"the grader's process was killed by {signal_name} (CPU limit {limits.cpu_seconds} s, memory "
                   f"{limits.memory_mib} MiB, files 16 MiB)")
        else:
            why = ("server", f"the grader's process exited with status {returncode} before grading every sample; "
                             f"its output: {printed[-300:]!r}")
        results += [Result(error=why[0], details=why[1]) for _ in range(count - len(results))]
    for result in results:
        result.seconds = seconds / max(count, 1)
    return results
