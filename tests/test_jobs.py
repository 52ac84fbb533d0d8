"""Clients and job helpers: keys, uploads and jobs that re-running a cell never duplicates, budget."""

import threading

import pytest

from emulator import Faults, openai_client
from helpers.data.datasets import RECIPES
from helpers.errors import CourseError
from helpers.providers import api, jobs

MODEL = "gpt-4o-mini-2024-07-18"


def test_no_key_is_a_short_message_not_a_traceback(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CourseError) as err:
        api.get_client(dry_run=False, env_file=tmp_path / "missing.env")
    assert "OPENAI_API_KEY" in str(err.value) and ".env" in str(err.value) and "Colab" in str(err.value)
    assert err.value._render_traceback_() == [f"CourseError: {err.value}"]


def test_key_from_a_dotenv_file_is_used_and_never_shown(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    secret = "sk-test-" + "x" * 40
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={secret}\n")
    client = api.get_client(dry_run=False, env_file=tmp_path / ".env")
    assert client.api_key == secret
    assert secret not in repr(client) and secret not in capsys.readouterr().out


def test_uploading_the_same_content_twice_reuses_the_file(capsys):
    client = openai_client()
    first = jobs.upload(client, RECIPES / "train.jsonl")
    again = jobs.upload(client, RECIPES / "train.jsonl")
    assert again.id == first.id and len(client.files.list().data) == 1
    assert "reusing" in capsys.readouterr().out
    assert jobs.upload(client, RECIPES / "validation.jsonl").id != first.id


def test_rerunning_the_create_cell_makes_no_second_job(tmp_path):
    client = openai_client(faults=Faults(gate=threading.Event()))  # jobs stay queued: the gate never opens
    state = tmp_path / "job.json"
    train = jobs.upload(client, RECIPES / "train.jsonl")
    key = jobs.run_key(model=MODEL, training_file=train.id, n_epochs=3)

    def create_cell():  # what the notebook's cell does
        job = jobs.find_job(client, key, state)
        if job is None:
            job = client.fine_tuning.jobs.create(model=MODEL, training_file=train.id, metadata={"course_run": key})
        jobs.remember(job, key, state)
        return job

    first, second = create_cell(), create_cell()
    state.unlink()  # even without the file, the metadata tag finds it
    third = create_cell()
    assert first.id == second.id == third.id and len(client.fine_tuning.jobs.list().data) == 1
    assert jobs.run_key(model=MODEL, training_file=train.id, n_epochs=4) != key
    client.fine_tuning.jobs.cancel(first.id)
    fresh = create_cell()
    assert fresh.id != first.id  # a cancelled job is not reused
    client.fine_tuning.jobs.cancel(fresh.id)
    assert [j.status for j in client.fine_tuning.jobs.list()] == ["cancelled", "cancelled"]


def test_budget_guard():
    jobs.check_budget(0.25, None)
    jobs.check_budget(0.25, 1.0)
    with pytest.raises(CourseError, match=r"\$0.25 is above budget_usd=\$0.10"):
        jobs.check_budget(0.25, 0.10)
    with pytest.raises(CourseError, match="No price"):
        jobs.check_budget(None, 1.0)


def test_an_unknown_provider_or_entra_id_at_openai_is_refused_clearly():
    with pytest.raises(CourseError, match="provider must be one of 'openai', 'azure', not 'aws'"):
        api.get_client(dry_run=True, provider="aws")
    with pytest.raises(CourseError, match="Entra ID sign-in is for Azure OpenAI"):
        api.get_client(dry_run=False, provider="openai", entra_id=True)


def test_a_dry_run_without_the_emulator_says_what_to_do(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_emulator(name, *args, **kwargs):
        if name == "emulator":
            raise ImportError("No module named 'emulator'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_emulator)
    with pytest.raises(CourseError, match="needs the course's offline emulator.*make install"):
        api.get_client(dry_run=True)
