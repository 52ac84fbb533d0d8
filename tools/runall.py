"""Execute every notebook with papermill and summarise their metrics.json files: one row per notebook
(status, minutes, its headline) on screen and in runs/summary.md, every figure in runs/summary.json.

    python -m tools.runall                      # all notebooks, dry run, into runs/
    python -m tools.runall notebooks/03-*.ipynb -p max_steps=60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from helpers.env import ROOT

NOTEBOOKS = ROOT / "notebooks"
RUNS = ROOT / "runs"


def parse_value(text: str):
    """A -p value as Python would read it: numbers, booleans and None, else a string."""
    try:
        return json.loads({"True": "true", "False": "false", "None": "null"}.get(text, text))
    except json.JSONDecodeError:
        return text


def run_notebook(path: Path, runs: Path, parameters: dict) -> dict:
    """Execute one notebook into runs/; return its summary row (status, seconds, metrics)."""
    import papermill

    out_dir = runs / path.stem
    params = {"dry_run": True, "output_dir": str(out_dir), **parameters}
    metrics_file = out_dir / "metrics.json"
    metrics_file.unlink(missing_ok=True)  # a failed run must not report an earlier run's figures
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(runs / path.name), parameters=params,
                                   cwd=str(path.parent), progress_bar=True)
        status = "ok"
    except Exception as err:  # papermill saves the failed copy; report and go on
        status = f"failed: {type(err).__name__}: {str(err).strip().splitlines()[-1][:120]}"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return {"notebook": path.name, "status": status,
            "seconds": round(time.perf_counter() - start, 1), **metrics}


def summarise(rows: list[dict], runs: Path) -> pd.DataFrame:
    """Write every figure to runs/summary.json, and the table a reader scans to runs/summary.md: a
    row per notebook with its status, time and headline (what its metrics.json calls its result)."""
    (runs / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = pd.DataFrame([{"notebook": r["notebook"], "status": r["status"], "minutes": round(r["seconds"] / 60, 1),
                           "headline": r.get("headline", "")} for r in rows]).set_index("notebook")
    (runs / "summary.md").write_text(table.to_markdown() + "\n")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the course notebooks with papermill.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="parameter for every notebook (repeatable)")
    parser.add_argument("--runs", type=Path, default=RUNS, help="output folder")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p {item!r}: expected NAME=VALUE")
        params[name] = parse_value(value)
    notebooks = args.notebooks or sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for nb in notebooks:
        print(f"running {nb.name} ...", flush=True)
        rows.append(run_notebook(nb.resolve(), args.runs.resolve(), params))
        print(f"  {rows[-1]['status']} in {rows[-1]['seconds']} s", flush=True)
    table = summarise(rows, args.runs)
    print(table.to_markdown())
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
