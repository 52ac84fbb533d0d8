"""The course's helper package, laid out by the steps of a fine-tune. Notebooks import the module
they need from the step they are at:

    from helpers import env, models, plots                     # offline switches; the embedded model; charts
    from helpers.data import datasets, validate, cost, tokens   # JSONL in and out, checking a file, its bill
    from helpers.train import recipe, lora, autotrain           # the one LoRA + SFT recipe, training, AutoTrain
    from helpers.eval import sql, generate, few_shot, break_even, ingredients, persona   # measuring models
    from helpers.providers import api, jobs, azure, conventions  # OpenAI and Azure OpenAI: clients, jobs, deployments

Dry runs talk to the offline API emulator, a package of its own (`emulator/`); maintainer tooling
lives in `tools/`. Nothing here imports either of them, except `providers.api.offline`, which loads
the emulator for a dry run.
"""

__version__ = "0.1.0"
