"""Shared helpers for the fine-tuning course notebooks.

Each module covers one concern; notebooks import the module they need:

    from helpers import datasets, env, evaluation, models, plots, training
"""

__version__ = "0.1.0"
