"""A learner's path, in a real browser: JupyterLab on localhost, a notebook opened in headless Chromium
(Debian's package, driven by Playwright through its executable_path), Run All in dry run, the run's
own figures on the page, and a screenshot under runs/ for a person to look at."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import papermill
import pytest

from helpers.env import ROOT

NOTEBOOK = ROOT / "notebooks" / "02-azure-openai.ipynb"  # the quickest walkthrough
# The figures are checked where the suite runs this notebook with nbval; here a short dry run shows that
# a learner's Run All works in the browser (4 emulated steps, 4 test questions: about a minute).
PARAMETERS = {"dry_run": True, "emulator_steps": 4, "eval_samples": 4}
KNOWN_OUTPUT = "quip-ft still deployed: False"  # printed by the last cells, after the deployment is deleted
OUT = ROOT / "runs" / "browser"
HOW = ("install Debian's Chromium and Playwright: `sudo apt-get install chromium` and "
       "`.venv/bin/pip install playwright` (.ci/run does both); no browser download is needed")


def chromium() -> str:
    """Path of the system Chromium; skips (fails under .ci/run) with how to install it when missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        message = f"Chromium or Playwright is missing: {HOW}"
        if os.environ.get("COURSE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(port: int, token: str, settings_dir) -> subprocess.Popen:
    """JupyterLab serving the course folder, app exposed to the page, every cell kept in the page."""
    settings = {"notebook-extension/tracker": {"windowingMode": "none"},  # render every cell, on screen or not
                "apputils-extension/notification": {"fetchNews": "false"}}  # no news pop-up over the page
    for name, values in settings.items():
        path = settings_dir / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    lab = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.user_settings_dir={settings_dir}", "--ServerApp.port_retries=0", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=(OUT / "jupyterlab.log").open("w"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return lab
        except OSError:
            if lab.poll() is not None:
                break
            time.sleep(0.5)
    lab.kill()
    pytest.fail(f"JupyterLab did not start; see {OUT / 'jupyterlab.log'}")


@pytest.mark.slow
def test_a_learner_runs_a_notebook_in_jupyterlab(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    prepared = OUT / NOTEBOOK.name
    papermill.execute_notebook(str(NOTEBOOK), str(prepared), prepare_only=True,
                               parameters={**PARAMETERS, "output_dir": str(OUT / "out")})
    port, token = free_port(), secrets.token_hex(16)
    lab = start_lab(port, token, tmp_path / "settings")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/runs/browser/{NOTEBOOK.name}?token={token}")
            page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')",
                                   timeout=90_000)
            page.wait_for_function("window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel"
                                   "?.status === 'idle'", timeout=90_000)
            # Run > Run All Cells; the command resolves once every cell has run, false if one failed
            succeeded = page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            done = page.get_by_text(KNOWN_OUTPUT)
            if done.count():
                done.first.scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "02-azure-openai.png"))
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            assert succeeded, "a cell failed in the browser:\n" + "\n".join(errors.all_inner_texts())[-3000:]
            assert done.count() == 1, f"{KNOWN_OUTPUT!r} is not on the page; see the screenshots in {OUT}"
            metrics = json.loads((OUT / "out" / "metrics.json").read_text())
            # the page shows what this run measured: the model its job made, the test questions it asked
            assert page.get_by_text(f"succeeded: {metrics['fine_tuned_model']}").count() >= 1
            assert page.get_by_text(f"eval_samples={PARAMETERS['eval_samples']}").count() >= 1
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    assert metrics["deployment_deleted"] is True and metrics["dry_run"] is True
    assert metrics["train_steps"] == PARAMETERS["emulator_steps"] and metrics["eval_samples"] == PARAMETERS["eval_samples"]


def test_a_missing_browser_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("COURSE_REQUIRE_BROWSER", "1")  # as under .ci/run: fail
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        chromium()
    monkeypatch.delenv("COURSE_REQUIRE_BROWSER")  # elsewhere: skip, with the same advice
    with pytest.raises(pytest.skip.Exception, match="pip install playwright"):
        chromium()
