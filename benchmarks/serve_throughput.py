"""Serving speed of the fine-tuned model, engine by engine, side by side in one run: `generate` in
this process, `transformers serve`, and llama.cpp's server on GGUF files (f16, q8_0).

    python benchmarks/serve_throughput.py [--model runs/03-huggingface-trl/merged] [--requests 8]
                                          [--concurrent 4] [--out runs/bench/serve_throughput.json]

Every engine answers the same test prompts greedily (at most 64 new tokens, as notebook 03 scores),
first one request at a time, then `--concurrent` at once, through the same `openai` client code as
notebook 05 (helpers/serve/measure.py). Every reply's text is counted with the model's tokenizer
(the engines' own counts differ: transformers counts the end token, llama.cpp's stream gives none).
Each server runs alone, with all of this machine's threads, and is stopped before the next starts.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import pandas as pd
import torch
from openai import OpenAI

from helpers import env, models
from helpers.data import datasets
from helpers.serve import llamacpp, measure, server

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # what decides CPU matmul speed


def cpu_flags() -> list[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in FLAGS if f in flags]


def serve(name: str, command: list[str], model: str, ready_path: str, rows, args, logs: Path, tokenizer) -> dict:
    with server.start(command, name=name, model=model, ready_path=ready_path, log_path=logs / f"{name}.log") as srv:
        client = OpenAI(base_url=srv.base_url, api_key="local")
        return {"start_s": srv.seconds_to_ready, **measure.measure(client, srv.model, rows, args.concurrent,
                                                                   args.max_tokens, name, tokenizer)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "03-huggingface-trl" / "merged",
                        help="a merged model folder (notebook 03 writes this one; `make run` runs it)")
    parser.add_argument("--requests", type=int, default=8, help="test prompts per measurement")
    parser.add_argument("--concurrent", type=int, default=4, help="requests in flight at once in the second measurement")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "serve_throughput.json")
    args = parser.parse_args()
    if not (args.model / "config.json").exists():
        raise SystemExit(f"No merged model in {args.model}: run notebook 03 (make run does), or pass --model FOLDER.")
    missing = llamacpp.why_not()
    if missing:
        raise SystemExit(missing)
    env.set_offline(True)
    work = args.out.parent / "serve_throughput"
    rows = datasets.load_split("test", limit=args.requests, seed=42)
    threads = torch.get_num_threads()

    model, tokenizer = models.load_model(str(args.model))
    results = {"in-process generate": measure.in_process(model, tokenizer, rows, args.max_tokens)}
    del model
    results["transformers serve"] = serve(
        "transformers serve", ["transformers", "serve", str(args.model), "--host", "{host}", "--port", "{port}",
                               "--device", "cpu"], str(args.model), "/health", rows, args, work, tokenizer)
    for outtype in ("f16", "q8_0"):
        gguf = llamacpp.convert(args.model, work / f"model-{outtype}.gguf", outtype)
        results[f"llama.cpp {outtype}"] = {"size_mb": gguf.stat().st_size / 1e6, **serve(
            f"llama.cpp {outtype}", [str(llamacpp.python()), "-m", "llama_cpp.server", "--model", str(gguf),
                                     "--model_alias", outtype, "--host", "{host}", "--port", "{port}",
                                     "--n_threads", str(threads), "--n_threads_batch", str(threads),
                                     "--interrupt_requests", "False"],
            outtype, "/v1/models", rows, args, work, tokenizer)}

    machine = {"cpu": platform.processor() or platform.machine(), "threads": threads, "cpu_flags": cpu_flags(),
               "torch": torch.__version__}
    print(f"{machine['threads']} threads, CPU flags {', '.join(machine['cpu_flags']) or 'none of ' + ', '.join(FLAGS)}")
    with pd.option_context("display.width", 200):
        print(measure.table(results, args.concurrent).round(3).to_string())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "requests": args.requests, "concurrent": args.concurrent,
                                    "max_tokens": args.max_tokens, "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
