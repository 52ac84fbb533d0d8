"""Fine-tuning jobs on OpenAI's or Azure OpenAI's API (or the emulator): uploads and jobs that are
never made twice, a budget guard, waiting with a progress bar and a live loss plot, results as
tables. What differs between the providers comes from `helpers.providers.conventions`."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from tqdm.auto import tqdm

from helpers import plots
from helpers.errors import CourseError
from helpers.providers.api import explained_errors
from helpers.providers.conventions import JOB_ENDED, JOB_STOPPED


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes: the same data gets the same upload."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def upload(client, path: str | Path, poll_seconds: float = 1.0, timeout: float = 1800):
    """Upload a training file once (a file with the same content name is reused) and wait until
    the provider has processed it: jobs refuse files that are still pending."""
    path = Path(path)
    name = f"{path.stem}-{file_digest(path)[:12]}{path.suffix}"
    with explained_errors():
        for existing in client.files.list(purpose="fine-tune"):
            if existing.filename == name and existing.bytes == path.stat().st_size and existing.status != "error":
                print(f"{path.name}: reusing {existing.id} (same content already uploaded)")
                return wait_for_file(client, existing, poll_seconds, timeout)
        with path.open("rb") as f:
            created = client.files.create(file=(name, f.read()), purpose="fine-tune")
    print(f"{path.name}: uploaded as {created.id} ({created.bytes:,} bytes)")
    return wait_for_file(client, created, poll_seconds, timeout)


def wait_for_file(client, file, poll_seconds: float = 1.0, timeout: float = 1800):
    """Poll an upload until it is processed (at once on OpenAI; Azure takes a moment)."""
    start = time.monotonic()
    with explained_errors():
        while file.status not in ("processed", "error"):
            if time.monotonic() - start > timeout:
                raise CourseError(f"{file.id} is still {file.status} after {timeout:.0f} s: re-run this cell.")
            time.sleep(poll_seconds)
            file = client.files.retrieve(file.id)
    if file.status == "error":
        raise CourseError(f"The provider could not process {file.id}: {file.status_details or 'no reason given'}")
    return file


def run_key(**settings) -> str:
    """A short tag for one job's inputs (file ids, model, hyperparameters): the same inputs, the same tag."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def find_job(client, key: str, state_file: str | Path | None = None):
    """The job already made for these inputs (remembered on disk, or tagged with metadata), or None."""
    with explained_errors():
        if state_file and Path(state_file).exists():
            saved = json.loads(Path(state_file).read_text())
            if saved.get("key") == key:
                try:
                    job = client.fine_tuning.jobs.retrieve(saved["job_id"])
                    if job.status not in JOB_STOPPED:
                        print(f"reusing {job.id} ({job.status}), remembered in {Path(state_file).name}")
                        return job
                except Exception:  # forgotten by the server (e.g. a new emulator): look it up
                    pass
        for job in client.fine_tuning.jobs.list(metadata={"course_run": key}, limit=10):
            # checked here too: a service that ignores the metadata filter lists every job
            if (job.metadata or {}).get("course_run") == key and job.status not in JOB_STOPPED:
                print(f"reusing {job.id} ({job.status}), found by its course_run tag")
                return job
    return None


def remember(job, key: str, state_file: str | Path) -> None:
    """Write the job id beside the outputs so that re-running the notebook finds it."""
    Path(state_file).parent.mkdir(parents=True, exist_ok=True)
    Path(state_file).write_text(json.dumps({"key": key, "job_id": job.id, "model": job.model}, indent=2))


def check_budget(estimated_usd: float | None, budget_usd: float | None) -> None:
    """Refuse to start a job whose estimated cost is above the budget (None: no budget)."""
    if budget_usd is None:
        return
    if estimated_usd is None:
        raise CourseError("No price is known for this model, so the budget cannot be checked; "
                          "set budget_usd=None to go ahead anyway.")
    if estimated_usd > budget_usd:
        raise CourseError(f"Estimated cost ${estimated_usd:,.2f} is above budget_usd=${budget_usd:,.2f}: "
                          "use fewer examples or epochs, or raise the budget.")


def metrics_events(client, job_id: str) -> pd.DataFrame:
    """The job's metrics events (every page), oldest first: step, train_loss, valid_loss, ..."""
    rows = [e.data for e in client.fine_tuning.jobs.list_events(job_id, limit=100)
            if e.type == "metrics" and e.data]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["step", "train_loss"])
    return frame.groupby("step", as_index=False).first().sort_values("step")


def wait_for_job(client, job_id: str, poll_seconds: float = 2.0, timeout: float = 3600, plot: bool = True):
    """Follow a job to its end with a progress bar over steps and a loss plot redrawn as it grows."""
    handle, shown = None, 0
    bar = tqdm(desc=job_id, unit="step")
    start = time.monotonic()
    with explained_errors():
        while True:
            job = client.fine_tuning.jobs.retrieve(job_id)
            history = metrics_events(client, job_id)
            total = int(history["total_steps"].max()) if "total_steps" in history and len(history) else None
            if total and bar.total != total:
                bar.total = total
            bar.set_postfix_str(job.status)
            bar.update(len(history) - bar.n)
            if plot and len(history) > shown and "train_loss" in history:
                handle, shown = _show_loss(history, handle), len(history)
            if job.status in JOB_ENDED:
                break
            if time.monotonic() - start > timeout:
                bar.close()
                raise CourseError(f"{job_id} is still {job.status} after {timeout:.0f} s: re-run this cell to keep waiting.")
            time.sleep(poll_seconds)
    bar.close()
    if job.status != "succeeded":
        error = job.error.message if job.error else "no reason given"
        raise CourseError(f"{job_id} ended {job.status}: {error}")
    return job


def _show_loss(history: pd.DataFrame, handle):
    """Draw (or redraw in place) the loss curve in a notebook."""
    from IPython.display import display  # in a notebook's kernel only

    frame = history.melt(id_vars="step", value_vars=[c for c in ("train_loss", "valid_loss") if c in history],
                         var_name="split", value_name="loss").dropna()
    frame["split"] = frame["split"].str.replace("_loss", "").replace({"valid": "validation"})
    fig = plots.plot_loss(frame, loss_on="trained assistant tokens", title="Fine-tuning job: loss from its metrics events")
    plt.close(fig)
    if handle is None:
        return display(fig, display_id=True)
    handle.update(fig)
    return handle


def results_frame(client, job) -> pd.DataFrame:
    """The job's results file (per-step metrics CSV) as a DataFrame."""
    with explained_errors():
        content = client.files.content(job.result_files[0])
    return pd.read_csv(io.BytesIO(content.content))


def figures(job, results: pd.DataFrame, estimate: dict) -> dict:
    """What a finished fine-tuning job is reported by: its model, steps, first and last losses, tokens, and what
    the estimate before it said it would bill."""
    return {"fine_tuned_model": job.fine_tuned_model, "train_steps": int(results.step.max()),
            "first_train_loss": float(results.train_loss.iloc[0]), "final_train_loss": float(results.train_loss.iloc[-1]),
            "final_valid_loss": float(results.valid_loss.dropna().iloc[-1]), "trained_tokens": job.trained_tokens,
            "estimated_billed_tokens": estimate["estimated_billed_tokens"],
            "estimated_cost_usd": estimate["estimated_cost_usd"]}
