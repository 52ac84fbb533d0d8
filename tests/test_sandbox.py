"""A learner's grader runs in a process of its own, with limits: each way a grader goes wrong gives a clear
error for the samples it concerns, the other samples keep their grades, and nothing escapes the limits."""

import os
import textwrap
import time

import pytest

from helpers.eval import sandbox

LIMITS = sandbox.Limits(seconds=4, cpu_seconds=8, memory_mib=512, output_bytes=10_000)
PAIRS = [({"output_text": "a"}, {"answer": "a"}), ({"output_text": "b"}, {"answer": "a"})]


def run(body: str, pairs=PAIRS, limits=LIMITS):
    return sandbox.grade(textwrap.dedent(body), pairs, limits)


def test_a_correct_grader_scores_each_sample():
    results = run("""
        def grade(sample, item):
            return 1.0 if sample["output_text"] == item["answer"] else 0.25
    """)
    assert [(r.score, r.error) for r in results] == [(1.0, None), (0.25, None)]


def test_a_grader_that_raises_on_one_sample_loses_only_that_sample_and_its_error_names_the_line():
    results = run("""
        def grade(sample, item):
            if sample["output_text"] == "b":
                return 1 / 0
            return 1
    """)
    assert (results[0].score, results[0].error) == (1.0, None)
    assert results[1].error == "runtime" and results[1].score == 0
    assert 'File "grader.py", line 4, in grade' in results[1].details and "ZeroDivisionError" in results[1].details
    assert "<string>" not in results[1].details  # the grader's frames only, not the runner's


def test_a_looping_grader_is_stopped_at_its_time_limit_as_unresponsive():
    start = time.monotonic()
    results = run("""
        def grade(sample, item):
            while True:
                pass
    """, limits=sandbox.Limits(seconds=1.5, cpu_seconds=30))
    assert time.monotonic() - start < 10
    assert [r.error for r in results] == ["unresponsive", "unresponsive"]
    assert "did not finish within 1.5 s" in results[0].details


@pytest.mark.parametrize("returned, shown", [("'yes'", "'yes'"), ("1.5", "1.5"), ("-0.1", "-0.1"),
                                             ("float('nan')", "nan"), ("None", "None"), ("True", "True")])
def test_anything_but_a_number_in_0_1_is_an_invalid_score(returned, shown):
    results = run(f"def grade(sample, item):\n    return {returned}\n", pairs=PAIRS[:1])
    assert results[0].error == "invalid_score" and results[0].score == 0
    assert f"returned {shown}; it must return a number in [0, 1]" in results[0].details


def test_a_grader_that_prints_megabytes_is_stopped_and_its_output_is_capped():
    results = run("""
        def grade(sample, item):
            for _ in range(1000):
                print("x" * 100_000)
            return 1
    """)
    assert [r.error for r in results] == ["output", "output"]
    assert "printed more than 10,000 bytes" in results[0].details and len(results[0].details) < 1000


def test_memory_beyond_the_limit_fails_the_sample_with_the_limit_named():
    results = run("""
        def grade(sample, item):
            block = bytearray(2_000_000_000)
            return 1
    """, pairs=PAIRS[:1])
    assert results[0].error == "server" and "512 MiB" in results[0].details and "MemoryError" in results[0].details


@pytest.mark.parametrize("call, denied", [
    ("socket.create_connection(('127.0.0.1', 9))", "socket."),
    ("urllib.request.urlopen('http://127.0.0.1:9/')", "socket."),
    ("subprocess.run(['true'])", "subprocess.Popen"),
    ("os.system('true')", "os.system"),
])
def test_no_network_and_no_processes(call, denied):
    results = run(f"import os, socket, subprocess, urllib.request\ndef grade(sample, item):\n    {call}\n    return 1\n",
                  pairs=PAIRS[:1])
    assert results[0].error == "runtime" and f"a grader may not use {denied}" in results[0].details


def test_writes_only_inside_its_temporary_folder(tmp_path):
    outside = tmp_path / "written-by-grader.txt"
    results = run(f"""
        import os
        def grade(sample, item):
            with open("scratch.txt", "w") as f:   # its own folder: allowed
                f.write("ok")
            if item["answer"] == "a":
                open({str(outside)!r}, "w").write("escaped")
            return 1.0
    """, pairs=[({"output_text": "a"}, {"answer": "a"}), ({"output_text": "a"}, {"answer": "b"})])
    assert results[0].error == "runtime" and f"not {outside}" in results[0].details
    assert (results[1].score, results[1].error) == (1.0, None)
    assert not outside.exists()


def test_a_grader_that_fails_to_load_fails_every_sample_with_the_reason():
    results = run("import course_module_that_does_not_exist\ndef grade(sample, item):\n    return 1\n")
    assert [r.error for r in results] == ["runtime", "runtime"]
    assert "failed to load" in results[0].details and "course_module_that_does_not_exist" in results[0].details


@pytest.mark.parametrize("source, message", [
    ("def score(sample, item):\n    return 1\n", "must define a top-level function grade(sample, item)"),
    ("def grade(sample, item)\n    return 1\n", "line 1"),
    ("def grade(sample, item):\n    return 1\n" + "#" * 300_000, "the limit is 262,144"),
])
def test_source_that_cannot_be_a_grader_is_refused_before_any_process_starts(source, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        sandbox.grade(source, PAIRS)


def test_the_grader_sees_no_secret_of_the_parent(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-a-grader")
    results = run("""
        import os
        def grade(sample, item):
            return 0.0 if any("sk-never" in v for v in os.environ.values()) else 1.0
    """, pairs=PAIRS[:1])
    assert results[0].score == 1.0 and os.environ["OPENAI_API_KEY"] == "sk-never-in-a-grader"
