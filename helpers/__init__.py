"""Shared helpers for the fine-tuning course notebooks.

Each module covers one concern; notebooks import the module they need:

    from helpers import datasets, env, evaluation, models, plots, training
    from helpers import chat_format, cost, tokens, validate   # training-data checks
    from helpers import autotrain                              # AutoTrain in its own environment
    from helpers import break_even, few_shot                   # notebook 00: prompting vs fine-tuning
"""

__version__ = "0.1.0"
