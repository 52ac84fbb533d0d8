"""A job's status under concurrency: every change goes through one lock, and a job that has ended
(a cancelled one included) never changes again. Training is replaced by a stand-in that reports
each step, so the tests decide where in its life a job is when it is cancelled."""

import random
import threading
from pathlib import Path

import openai
import pytest

from emulator import Faults, openai_client
from helpers.data.datasets import RECIPES

MODEL = "gpt-4o-mini-2024-07-18"
ENDINGS = {"Job was cancelled": "cancelled", "The job has successfully completed": "succeeded"}
WAIT = 30  # seconds before a stuck step fails the test


class StandInTrainer:
    """What the worker uses of a trainer once training is over."""

    def __init__(self, saving: threading.Event | None = None, may_save: threading.Event | None = None):
        self.saving, self.may_save = saving, may_save

    def evaluate(self, eval_dataset):
        return {"eval_loss": 0.5, "eval_mean_token_accuracy": 0.9}

    def save_model(self, folder):
        if self.saving:
            self.saving.set()
            assert self.may_save.wait(WAIT), "the test never let the adapter be saved"
        Path(folder).mkdir(parents=True, exist_ok=True)


class StandInTraining:
    """Runs `steps` steps, each logged and each followed by the stop question, as the real trainer
    does; `reached[k]` is set as step k begins (0: training has started, steps + 1: it is over)."""

    def __init__(self, steps: int, hold_at: int | None = None, ignore_stop: bool = False, hold_saving: bool = False):
        self.reached = [threading.Event() for _ in range(steps + 2)]
        self.steps, self.hold_at, self.ignore_stop = steps, hold_at, ignore_stop
        self.go_on = threading.Event()
        self.saving, self.may_save = threading.Event(), threading.Event()
        if not hold_saving:
            self.may_save.set()

    def __call__(self, rows, max_steps, on_log=None, should_stop=None, **options):
        self.reached[0].set()
        for step in range(1, self.steps + 1):
            self.reached[step].set()
            if step == self.hold_at:
                assert self.go_on.wait(WAIT), "the test never let training go on"
            on_log(step, {"loss": 2.0 / step, "mean_token_accuracy": 0.5})
            if should_stop() and not self.ignore_stop:
                break
        self.reached[-1].set()
        return StandInTrainer(self.saving, self.may_save)


class PerJob:
    """The stand-in training of each job, by job id (a job's output folder is named after it)."""

    def __init__(self):
        self.ready, self.trainings = threading.Condition(), {}

    def add(self, job_id: str, training: StandInTraining) -> None:
        with self.ready:
            self.trainings[job_id] = training
            self.ready.notify_all()

    def __call__(self, rows, max_steps, **options):
        job_id = Path(options["output_dir"]).name
        with self.ready:
            assert self.ready.wait_for(lambda: job_id in self.trainings, WAIT), f"no training for {job_id}"
        return self.trainings[job_id](rows, max_steps, **options)


def client_with(training, **faults):
    client = openai_client(faults=Faults(**faults))
    client.emulator.train = training
    return client


def start(client):
    training_file = client.files.create(file=("v.jsonl", (RECIPES / "validation.jsonl").read_bytes()),
                                        purpose="fine-tune")
    return client.fine_tuning.jobs.create(model=MODEL, training_file=training_file.id)


def endings(client, job_id) -> list[str]:
    """The ending events of a job, oldest first, and whether the last event is one."""
    messages = [e.message for e in reversed(list(client.fine_tuning.jobs.list_events(job_id, limit=100)))]
    found = [m for m in messages if m in ENDINGS or m.startswith("Fine-tuning job failed")]
    return found + (["(more events after the end)"] if found and messages[-1] != found[-1] else [])


def test_a_job_cancelled_while_queued_never_runs():
    gate, at_gate = threading.Event(), threading.Event()
    training = StandInTraining(steps=3)
    client = client_with(training, gate=gate, at_gate=at_gate)
    job = start(client)
    assert at_gate.wait(WAIT) and client.fine_tuning.jobs.retrieve(job.id).status == "queued"
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    gate.set()
    done = client.emulator.wait_for_worker(job.id, WAIT)
    assert done["status"] == "cancelled" and not training.reached[0].is_set()
    assert endings(client, job.id) == ["Job was cancelled"]


def test_a_job_cancelled_while_training_ends_cancelled_even_if_training_runs_to_the_end():
    training = StandInTraining(steps=4, hold_at=2, ignore_stop=True)  # a trainer that never asks to stop
    client = client_with(training)
    job = start(client)
    assert training.reached[2].wait(WAIT)
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    training.go_on.set()
    done = client.emulator.wait_for_worker(job.id, WAIT)
    assert training.reached[-1].is_set()  # training did finish...
    assert done["status"] == "cancelled" and done["fine_tuned_model"] is None  # ...and changed nothing
    assert [m.id for m in client.models.list() if m.id.startswith("ft:")] == []
    assert endings(client, job.id) == ["Job was cancelled"]


def test_a_job_cancelled_while_saving_its_model_publishes_nothing():
    training = StandInTraining(steps=2, hold_saving=True)
    client = client_with(training)
    job = start(client)
    assert training.saving.wait(WAIT)  # the adapter is being saved: the job is about to succeed
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    training.may_save.set()
    done = client.emulator.wait_for_worker(job.id, WAIT)
    assert done["status"] == "cancelled" and done["fine_tuned_model"] is None and done["result_files"] == []
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    assert endings(client, job.id) == ["Job was cancelled"]


def test_a_finished_job_cannot_be_cancelled():
    training = StandInTraining(steps=2)
    client = client_with(training)
    job = start(client)
    assert client.emulator.wait_for_worker(job.id, WAIT)["status"] == "succeeded"
    with pytest.raises(openai.BadRequestError, match="already succeeded"):
        client.fine_tuning.jobs.cancel(job.id)
    assert endings(client, job.id) == ["The job has successfully completed"]


def test_many_jobs_cancelled_at_random_moments_end_once_and_as_cancel_said():
    """Half the jobs are held at a random step while they are cancelled, then let go on; the others are
    cancelled at a random step while they go on, so the cancel lands wherever the worker then is."""
    rng = random.Random(14)
    per_job, plans, jobs, verdicts = PerJob(), [], [], {}
    client = client_with(per_job)  # one emulator, one lock, 24 jobs training at once
    for _ in range(24):
        steps = 6
        held = rng.random() < 0.5
        moment = rng.randrange(1, steps + 1) if held else rng.randrange(steps + 3)  # steps + 2: never
        plans.append((held, moment, StandInTraining(steps, hold_at=moment if held else None)))
        jobs.append(start(client))
        per_job.add(jobs[-1].id, plans[-1][2])
    for job, (_, moment, training) in zip(jobs, plans, strict=True):
        if moment < len(training.reached):
            assert training.reached[moment].wait(WAIT)
            try:
                verdicts[job.id] = client.fine_tuning.jobs.cancel(job.id).status
            except openai.BadRequestError as err:  # it had already ended
                verdicts[job.id] = str(err)
            training.go_on.set()
    for job, (held, _, _) in zip(jobs, plans, strict=True):
        done = client.emulator.wait_for_worker(job.id, WAIT)
        said = verdicts.get(job.id)
        if held or said == "cancelled":
            assert said == "cancelled" and done["status"] == "cancelled" and done["fine_tuned_model"] is None, job.id
        else:  # never cancelled, or the cancel came too late and said so
            assert done["status"] == "succeeded" and (said is None or "already succeeded" in said), (job.id, said)
        assert endings(client, job.id) == [next(m for m, s in ENDINGS.items() if s == done["status"])], job.id
