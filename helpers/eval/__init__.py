"""Measuring models: one batched greedy generation, the scorers of the three tasks (SQL,
ingredients, a persona), few-shot prompts and the break-even of a fine-tune."""
