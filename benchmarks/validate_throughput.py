"""Validation and token counting of a 100,000-example file: helpers.data.validate against a plain
per-message loop like the OpenAI cookbook's data-preparation notebook.

    python benchmarks/validate_throughput.py [--examples 100000] [--out runs/bench/validate_throughput.json]

The file is made from the recipe generator (system prompt, recipe, answer). The baseline parses
each line, runs the cookbook's format checks and encodes every message value one call at a
time. helpers.data.validate checks more rules and encodes each distinct text once, in parallel
batches. Both must give identical per-example token counts, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import time
from pathlib import Path

from helpers.data import tokens
from helpers.data.datasets import RECIPES
from helpers.data.validate import validate_file

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gpt-4o-mini-2024-07-18"


def make_file(path: Path, n: int, seed: int = 0) -> Path:
    """n recipe examples, one per line (repeats allowed, as in real scraped data)."""
    spec = importlib.util.spec_from_file_location("recipes_generate", RECIPES / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n):
            f.write(json.dumps(gen.to_example(*gen.make_recipe(rng, held=rng.random() < 0.2))) + "\n")
    return path


def cookbook_loop(path: Path, enc) -> tuple[list[int], list[int], int]:
    """The cookbook's way: per line, its format checks; per message value, one encode call."""
    totals, assistant, errors = [], [], 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            ex = json.loads(line)
            messages = ex.get("messages") if isinstance(ex, dict) else None
            if not messages:
                errors += 1
                continue
            bad = False
            for m in messages:
                if "role" not in m or "content" not in m:
                    bad = True
                if any(k not in ("role", "content", "name", "function_call", "weight") for k in m):
                    bad = True
                if m.get("role") not in ("system", "user", "assistant", "function"):
                    bad = True
                content = m.get("content")
                if (content is None and not m.get("function_call")) or not isinstance(content, (str, type(None))):
                    bad = True
            if not any(m.get("role") == "assistant" for m in messages):
                bad = True
            if bad:
                errors += 1
                continue
            n = 0
            for m in messages:
                n += 3
                for key, value in m.items():
                    n += len(enc.encode(value))
                    if key == "name":
                        n += 1
            totals.append(n + 3)
            assistant.append(sum(len(enc.encode(m["content"])) for m in messages if m["role"] == "assistant"))
    return totals, assistant, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "validate_throughput.json")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = make_file(args.out.parent / "validate_bench.jsonl", args.examples)
    enc = tokens.encoding_for(MODEL)  # loaded once, outside both timings

    start = time.perf_counter()
    base_totals, base_assistant, base_errors = cookbook_loop(path, enc)
    baseline_s = time.perf_counter() - start

    start = time.perf_counter()
    report = validate_file(path, model=MODEL)
    helpers_s = time.perf_counter() - start

    identical = (report.example_tokens == base_totals and report.assistant_tokens == base_assistant
                 and len(report.errors) == base_errors)
    result = {
        "examples": args.examples, "file_mb": round(path.stat().st_size / 1e6, 1),
        "cookbook_loop_s": round(baseline_s, 2), "helpers_validate_s": round(helpers_s, 2),
        "speedup": round(baseline_s / helpers_s, 2), "identical_counts": identical,
        "total_tokens": int(sum(base_totals)), "billed_tokens_per_epoch": report.stats["billed_tokens_per_epoch"],
        "duplicates_found": sum(w.code == "duplicate_example" for w in report.warnings),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "cpus": __import__("os").cpu_count(),
    }
    path.unlink()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    if not identical:
        raise SystemExit("token counts differ from the cookbook loop")


if __name__ == "__main__":
    main()
