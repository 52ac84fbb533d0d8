"""Graders, as reinforcement fine-tuning defines them, through the real openai SDK against the emulator
(`client.fine_tuning.alpha.graders.validate` and `.run`), and the metrics behind text_similarity."""

import pytest
from openai import BadRequestError

from emulator import openai_client
from helpers.eval import graders

EXACT = {"type": "string_check", "name": "exact", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
         "operation": "eq"}


@pytest.fixture(scope="module")
def client():
    return openai_client()


@pytest.mark.parametrize("operation, sample, expected", [
    ("eq", "Paris", 1.0), ("eq", "paris", 0.0), ("ne", "Lyon", 1.0), ("ne", "Paris", 0.0),
    ("like", "It is Paris.", 1.0), ("like", "It is paris.", 0.0), ("ilike", "It is PARIS.", 1.0), ("ilike", "Lyon", 0.0)])
def test_string_check_operations_through_the_sdk(client, operation, sample, expected):
    run = client.fine_tuning.alpha.graders.run(grader={**EXACT, "operation": operation}, model_sample=sample,
                                               item={"answer": "Paris"})
    assert run.reward == expected and run.metadata.type == "string_check" and run.metadata.name == "exact"
    assert not any(value for key, value in run.metadata.errors.model_dump().items() if key.endswith("error"))


def test_templates_read_nested_item_fields_and_the_sample_as_json(client):
    grader = {**EXACT, "input": "{{ sample.output_json.city }}", "reference": "{{ item.truth.cities[1] }}"}
    run = client.fine_tuning.alpha.graders.run(grader=grader, model_sample='{"city": "Lyon"}',
                                               item={"truth": {"cities": ["Paris", "Lyon"]}})
    assert run.reward == 1.0


def test_a_missing_variable_scores_0_with_the_invalid_variable_flag(client):
    run = client.fine_tuning.alpha.graders.run(grader=EXACT, model_sample="Paris", item={"solution": "Paris"})
    assert run.reward == 0.0 and run.metadata.errors.invalid_variable_error


@pytest.mark.parametrize("grader, param, words", [
    ({**EXACT, "operation": "contains"}, "grader.operation", "eq, ne, like, ilike"),
    ({"type": "text_similarity", "name": "t", "input": "{{ sample.output_text }}", "reference": "x",
      "evaluation_metric": "bertscore"}, "grader.evaluation_metric", "fuzzy_match"),
    ({"type": "python", "name": "p", "source": "def score(sample, item):\n    return 1\n"}, "grader.source",
     "grade(sample, item)"),
    ({"type": "multi", "name": "m", "graders": {"a": EXACT}, "calculate_output": "a + b"}, "grader.calculate_output",
     "'b'"),
    ({"type": "multi", "name": "m", "graders": {"a": {**EXACT, "reference": "{{ answer }}"}}, "calculate_output": "a"},
     "grader.graders.a.reference", "not a variable"),
    ({"type": "score_model", "name": "s", "model": "no-such-model", "input": [{"role": "user", "content": "x"}]},
     "grader.model", "does not exist"),
])
def test_validate_refuses_a_bad_grader_naming_the_field(client, grader, param, words):
    with pytest.raises(BadRequestError) as caught:
        client.fine_tuning.alpha.graders.validate(grader=grader)
    assert caught.value.body["param"] == param and words in caught.value.body["message"]


def test_validate_returns_a_good_grader(client):
    assert client.fine_tuning.alpha.graders.validate(grader=EXACT).grader.name == "exact"


def test_multi_combines_named_graders_with_its_formula(client):
    grader = {"type": "multi", "name": "both", "calculate_output": "0.75 * exact + 0.25 * contains",
              "graders": {"exact": EXACT, "contains": {**EXACT, "operation": "ilike"}}}
    run = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="paris, France", item={"answer": "Paris"})
    assert run.reward == pytest.approx(0.25) and run.sub_rewards == {"exact": 0.0, "contains": 1.0}


def test_a_python_grader_runs_in_its_sandbox_and_its_failures_set_the_providers_flags(client):
    good = {"type": "python", "name": "p", "source": "def grade(sample, item):\n    return 0.5\n"}
    assert client.fine_tuning.alpha.graders.run(grader=good, model_sample="x").reward == 0.5
    looping = {**good, "source": "def grade(sample, item):\n    while True:\n        pass\n"}
    run = graders.run(looping, "x", limits=graders.sandbox.Limits(seconds=1))
    assert run["reward"] == 0 and run["metadata"]["errors"]["unresponsive_reward_error"]
    crashing = {**good, "source": "def grade(sample, item):\n    return item['missing']\n"}
    run = client.fine_tuning.alpha.graders.run(grader=crashing, model_sample="x", item={})
    assert run.reward == 0 and run.metadata.errors.python_grader_runtime_error
    assert "KeyError: 'missing'" in run.metadata.errors.python_grader_runtime_error_details


def test_a_score_model_grader_scores_with_the_emulators_model_within_its_range(client):
    grader = {"type": "score_model", "name": "judge", "model": "gpt-4o-mini-2024-07-18", "range": [0, 1],
              "input": [{"role": "system", "content": "Reply with one number from 0 to 1 and nothing else."},
                        {"role": "user", "content": "Question: 2 + 2? Answer: {{ sample.output_text }}. Score it."}]}
    run = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="4")
    assert 0 <= run.reward <= 1 and run.metadata.sampled_model_name == "gpt-4o-mini-2024-07-18"
    usage = run.model_grader_token_usage_per_model["gpt-4o-mini-2024-07-18"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 40  # the prompt was read


@pytest.mark.parametrize("metric, same, close, far", [
    ("fuzzy_match", 1.0, 0.93, 0.4), ("bleu", 1.0, 0.49, 0.01), ("gleu", 1.0, 0.5, 0.05), ("meteor", 0.99, 0.8, 0.2),
    ("cosine", 0.99, 0.875, 0.2), ("rouge_1", 1.0, 0.83, 0.2), ("rouge_2", 1.0, 0.6, 0.01), ("rouge_l", 1.0, 0.83, 0.2)])
def test_text_similarity_orders_identical_close_and_unrelated_texts(metric, same, close, far):
    score = graders.SIMILARITY[metric]
    reference = "the cat sat on the mat"
    assert score(reference, reference) >= same
    assert score("the cat is on the mat", reference) == pytest.approx(close, abs=0.01)
    assert score("dogs bark at night", reference) <= far


def test_variables_lists_the_item_fields_a_grader_reads():
    grader = {"type": "multi", "name": "m", "calculate_output": "a",
              "graders": {"a": {**EXACT, "reference": "{{ item.answer }} {{ item.db.name }}"}}}
    assert graders.variables(grader) == {"item.answer", "item.db.name"}


def test_the_sql_python_grader_agrees_with_the_courses_scorer_on_every_kind_of_reply():
    """The grader a provider would run (self-contained: the databases are in its source) gives the score the
    course's own scorer gives: 0.9 for the gold rows, 0.1 for SQL that runs, 0 for SQL that does not."""
    from helpers.data import datasets
    from helpers.eval import sql

    samples = []
    for row in datasets.load_split("test", limit=12, seed=3):
        gold = row["messages"][-1]["content"]
        for reply in (gold, f"```sql\n{gold};\n```", f"{gold} LIMIT 0", "SELECT 1", "SELECT nope FROM nowhere", "I think"):
            samples.append((reply, {"db_id": row["db_id"], "gold_sql": gold}))
    results = graders.run_many(graders.sql_grader(), samples)
    expected = []
    for reply, item in samples:
        db, query = sql.DB_DIR / f"{item['db_id']}.sqlite", sql.extract_sql(reply)
        runs = not sql.execution_match(db, query, item["gold_sql"])[1].startswith("error")
        expected.append(0.9 * sql.execution_match(db, query, item["gold_sql"])[0] + 0.1 * runs)
    assert [r["reward"] for r in results] == pytest.approx(expected)
    assert {round(e, 1) for e in expected} == {0.0, 0.1, 1.0}  # every kind of reply occurred
