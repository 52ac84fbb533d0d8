import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from tools import runall


def tiny_notebook(path, body):
    params = new_code_cell("dry_run = False\noutput_dir = 'out'\nfactor = 1")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(body)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)
    return path


WRITES = ("import json, pathlib\np = pathlib.Path(output_dir); p.mkdir(parents=True, exist_ok=True)\n"
          "(p / 'metrics.json').write_text(json.dumps({'accuracy': 0.25 * factor, 'dry': dry_run,\n"
          "                                           'headline': f'accuracy {0.25 * factor:.0%}'}))")


def test_parse_value():
    assert [runall.parse_value(v) for v in ["3", "1e-3", "True", "None", "abc", "org/model"]] == [
        3, 0.001, True, None, "abc", "org/model"]


def test_runs_every_notebook_and_summarises(tmp_path):
    good = tiny_notebook(tmp_path / "01-good.ipynb", WRITES)
    bad = tiny_notebook(tmp_path / "02-bad.ipynb", "raise RuntimeError('boom')")
    runs = tmp_path / "runs"
    (runs / "02-bad").mkdir(parents=True)
    (runs / "02-bad" / "metrics.json").write_text('{"accuracy": 0.9}')  # left by an earlier run
    code = runall.main([str(good), str(bad), "--runs", str(runs), "-p", "factor=2"])
    assert code == 1  # one notebook failed
    summary = json.loads((runs / "summary.json").read_text())
    assert summary[0]["status"] == "ok" and summary[0]["accuracy"] == 0.5 and summary[0]["dry"] is True
    assert summary[1]["status"].startswith("failed: PapermillExecutionError") and "boom" in summary[1]["status"]
    assert "accuracy" not in summary[1]  # the stale figures are not reported as this run's
    assert (runs / "02-bad.ipynb").exists()  # the failed copy is kept for reading
    table = (runs / "summary.md").read_text().splitlines()
    assert [c.strip() for c in table[0].split("|")[1:-1]] == ["notebook", "status", "minutes", "headline"]
    assert [row.split("|")[1].strip() for row in table[2:]] == ["01-good.ipynb", "02-bad.ipynb"]
    assert "accuracy 50%" in table[2] and "failed" in table[3]
