"""The course's helper package, laid out by the steps of a fine-tune. Notebooks import the module
they need from the step they are at:

    from helpers import env, models, plots, errors, processes, record   # offline switches; models; charts; errors;
                                                                        # child processes; metrics.json
    from helpers.data import datasets, chat_format, validate, tokens, cost, preferences   # JSONL, rules, checks, bill, DPO pairs
    from helpers.train import recipe, lora, distributed, autotrain   # one LoRA recipe (SFT, DPO), training, launches, AutoTrain
    from helpers.eval import generate, sql, forgetting, few_shot, break_even, ingredients, persona, graders, sandbox
                                                                    # measuring models; graders and their sandbox
    from helpers.serve import server, measure, llamacpp, ollama, vllm   # hosting a model: servers, speed, engines
    from helpers.providers import api, jobs, azure, conventions, settings, http   # OpenAI and Azure OpenAI

Dry runs talk to the offline API emulator, a package of its own (`emulator/`); maintainer tooling
lives in `tools/`. Nothing here imports either of them, except `providers.api.offline`, which loads
the emulator for a dry run. tests/test_architecture.py keeps this map complete.
"""

__version__ = "0.1.0"
