"""Shared fixtures: the embedded model is loaded once per session, offline."""

import pytest

from helpers import env

env.set_offline(True)


@pytest.fixture(scope="session")
def embedded():
    """(model, tokenizer) of the embedded SmolLM2-135M-Instruct, from the conversion cache."""
    from helpers import models

    return models.load_model("")


@pytest.fixture
def company_db():
    from helpers.evaluation import DB_DIR

    return DB_DIR / "company.sqlite"
