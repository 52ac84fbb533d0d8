"""Measuring models: one batched greedy generation, the scorers of the three tasks (SQL,
ingredients, a persona), few-shot prompts, the break-even of a fine-tune, and what a fine-tune
cost outside its task (forgetting)."""
