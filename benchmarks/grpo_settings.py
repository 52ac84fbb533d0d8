"""Which GRPO settings lift notebook 03's dry-run model on this machine: a small sweep, side by side in one
run, scored on all of notebook 03's test questions (one question is under a point).

    python benchmarks/grpo_settings.py [--seeds 42 7] [--questions 32] [--settings "rate 1e-4" ...]

For each seed: the SFT model notebook 03's dry run trains (40 LoRA steps, shared with dpo_settings.py), its
execution accuracy, answers sampled on training questions and rewarded, the questions whose answers disagree
(the rest give GRPO no signal), then one GRPO run per setting on those questions: the reward per step, the
share of groups without signal, seconds per step, and the accuracy after. Writes runs/bench/grpo_settings.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import env, models  # noqa: E402
from helpers.data import datasets  # noqa: E402
from helpers.eval import sql  # noqa: E402
from helpers.train import lora  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from dpo_settings import seed_start  # noqa: E402

# name -> (steps, prompts per step, generations, learning rate). Probe at seed 42 on 2 cores (2026-12-04): from
# 32 questions, 13 had answers that disagree; 8 steps of 4 prompts x 4 answers took 94-96 s (about 12 s a step);
# 70.8% on the 120 test questions before, and after 8 steps 70.8% at 2e-5 and at 2e-4, 70.0% at 1e-3; 25-75% of
# each step's groups had no signal even on the kept questions. "32 steps, rate 1e-4" (this script, seed 42's SFT
# model, 73.3%): 11 of 32 questions kept, 49% of groups without signal, 15.9 s a step, 69.2% after (-4.2 points):
# 32 steps on 11 prompts is about 12 passes over them, and the model drifted.
# 64 questions, 1 thread beside the suite (2026-12-04, Intel Xeon): "16 steps, rate 5e-5" +0.8 at seed 42, +2.5 at
# seed 7; "16 steps, rate 2e-4" +1.7 at seed 42. --questions 128 "32 steps, rate 1e-4", 2 threads alone (2026-12-05,
# AMD EPYC): seed 42 73.3% -> 73.3% (52 of 128 kept, reward 0.58 -> 0.81, 12.0 s a step); seed 7 65.8% -> 70.0%
# (+4.2; 74 kept, reward 0.57 -> 0.78, 12.5 s a step).
SETTINGS = {
    "rate 2e-5": (8, 4, 4, 2e-5),
    "rate 2e-4": (8, 4, 4, 2e-4),
    "rate 1e-3": (8, 4, 4, 1e-3),
    "8 answers, rate 2e-4": (8, 2, 8, 2e-4),
    "32 steps, rate 1e-4": (32, 4, 4, 1e-4),
    "16 steps, rate 5e-5": (16, 4, 4, 5e-5),
    "16 steps, rate 2e-4": (16, 4, 4, 2e-4),
}


def reward(completions, gold_sql, db_id, **_) -> list[float]:
    """0.9 when the SQL returns the gold rows, plus 0.1 when it runs: the course's reward."""
    scores = []
    for completion, gold, db in zip(completions, gold_sql, db_id, strict=True):
        right, why = sql.execution_match(sql.DB_DIR / f"{db}.sqlite", sql.extract_sql(completion[0]["content"]), gold)
        scores.append(0.9 * right + 0.1 * (not why.startswith("error")))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--questions", type=int, default=32, help="training questions sampled to find disagreement")
    parser.add_argument("--samples", type=int, default=4, help="answers sampled per question before training")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help="names from SETTINGS")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench" / "dpo"))  # the SFT models dpo_settings keeps
    args = parser.parse_args()
    env.set_offline(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test_rows = datasets.load_split("test")
    results = []
    for seed in args.seeds:
        merged, base, questions, samples, sample_seconds = seed_start(seed, out, test_rows, args.questions,
                                                                      args.samples, 1.0)
        rows = [{"prompt": question["messages"][:-1], "gold_sql": question["messages"][-1]["content"],
                 "db_id": question["db_id"]} for question in questions]
        signal = lora.score_groups(rows, samples, [reward]).signal.tolist()
        prompts = [row for row, mixed in zip(rows, signal, strict=True) if mixed]
        zero = len(rows) - len(prompts)
        for name in args.settings:
            steps, per_step, generations, rate = SETTINGS[name]
            start = time.perf_counter()
            trainer = lora.train_grpo(prompts, [reward], steps, model_id=str(merged), prompts_per_step=per_step,
                                      generations=generations, learning_rate=rate, seed=seed,
                                      output_dir=out / "grpo-run")
            train_seconds = time.perf_counter() - start
            history = lora.grpo_history(trainer.state.log_history)
            tuned = trainer.model.merge_and_unload()
            tuned.eval()
            _, tokenizer = models.load_model(str(merged))
            after = float(sql.evaluate(tuned, tokenizer, test_rows, label=name).execution_match.mean())
            row = {"seed": seed, "setting": name, "steps": steps, "prompts_per_step": per_step,
                   "generations": generations, "learning_rate": rate, "questions": len(questions),
                   "questions_without_signal_before": zero, "prompts_kept": len(prompts),
                   "groups_without_signal_during": round(float(history["groups without signal"].mean()), 3),
                   "reward_first": round(float(history["mean reward"].iloc[0]), 3),
                   "reward_last": round(float(history["mean reward"].iloc[-1]), 3),
                   "sample_seconds": round(sample_seconds, 1), "train_seconds": round(train_seconds, 1),
                   "seconds_per_step": round(train_seconds / steps, 1), "sft_accuracy": base, "grpo_accuracy": after,
                   "gain_points": round(100 * (after - base), 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
            (out.parent / "grpo_settings.json").write_text(json.dumps(results, indent=1))
    import pandas as pd

    print(pd.DataFrame(results)[["seed", "setting", "prompts_kept", "groups_without_signal_during", "seconds_per_step",
                                 "sft_accuracy", "grpo_accuracy", "gain_points"]].to_string(index=False))


if __name__ == "__main__":
    main()
