"""Text-to-SQL scoring: execution match, exact match, shapes and tables."""

from helpers.data.datasets import answer, question
from helpers.eval import sql as ev

GOLD_TOP = "SELECT name FROM employees ORDER BY salary DESC LIMIT 3"


def test_same_rows_with_other_formatting_match(company_db):
    ok, note = ev.execution_match(company_db, "select name\nfrom employees where role='Engineer';",
                                  "SELECT name FROM employees WHERE role = 'Engineer'")
    assert ok and note == ""


def test_order_ignored_unless_gold_sorts(company_db):
    gold = "SELECT name FROM employees WHERE salary > 60000"
    assert ev.execution_match(company_db, gold + " ORDER BY name DESC", gold)[0]
    assert not ev.execution_match(company_db, GOLD_TOP.replace("DESC", "ASC"), GOLD_TOP)[0]


def test_wrong_value_does_not_match(company_db):
    ok, note = ev.execution_match(company_db, "SELECT COUNT(*) FROM employees WHERE role = 'Accountant'",
                                  "SELECT COUNT(*) FROM employees WHERE role = 'Engineer'")
    assert not ok and note == "1 rows, expected 1"


def test_invalid_sql_is_a_miss_with_the_error(company_db):
    ok, note = ev.execution_match(company_db, "SELEC name FROM employees", GOLD_TOP)
    assert not ok and note.startswith("error:") and "syntax error" in note


def test_predicted_sql_cannot_write(company_db):
    before = ev.run_sql(company_db, "SELECT COUNT(*) FROM employees")
    ok, note = ev.execution_match(company_db, "DELETE FROM employees", GOLD_TOP)
    assert not ok and "readonly" in note
    assert ev.run_sql(company_db, "SELECT COUNT(*) FROM employees") == before


def test_runaway_query_is_stopped(company_db):
    forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT MAX(x) FROM c"
    ok, note = ev.execution_match(company_db, forever, GOLD_TOP)
    assert not ok and "interrupted" in note


def test_float_noise_is_ignored(company_db):
    gold = "SELECT AVG(salary) FROM employees"
    assert ev.execution_match(company_db, "SELECT SUM(salary) * 1.0 / COUNT(*) FROM employees", gold)[0]


def test_extract_sql_from_chatty_replies():
    assert ev.extract_sql("```sql\nSELECT 1;\n```\nThis selects one.") == "SELECT 1"
    assert ev.extract_sql("SELECT a FROM t; SELECT b FROM t") == "SELECT a FROM t"
    assert ev.extract_sql("  SELECT 2  ") == "SELECT 2"


def test_exact_match_keeps_literal_case():
    assert ev.exact_match("select  NAME from t where x = 'Ab';", "SELECT name FROM t WHERE x = 'Ab'")
    assert not ev.exact_match("SELECT name FROM t WHERE x = 'ab'", "SELECT name FROM t WHERE x = 'Ab'")


def example(question, sql, db="company"):
    return {"db_id": db, "messages": [{"role": "system", "content": "schema"},
                                      {"role": "user", "content": question},
                                      {"role": "assistant", "content": sql}]}


def test_score_and_compare_tables():
    rows = [example("q1", GOLD_TOP), example("q2", "SELECT COUNT(*) FROM employees")]
    base = ev.score(rows, ["I think the answer is 3.", "SELECT COUNT(id) FROM employees"])
    tuned = ev.score(rows, [GOLD_TOP, "select count(*) from employees"])
    assert base.execution_match.tolist() == [False, True] and base.exact_match.tolist() == [False, False]
    table = ev.compare(base, tuned)
    assert table.loc["execution_match"].tolist() == [0.5, 1.0]
    assert table.loc["exact_match"].tolist() == [0.0, 1.0]
    assert list(ev.side_by_side(base, tuned, n=1).columns) == [
        "question", "gold", "base", "fine-tuned", "fine-tuned ok"]


def test_shape_picks_the_hardest_construct():
    assert ev.shape("SELECT a FROM t JOIN u ON t.x = u.id GROUP BY a") == "join"
    assert ev.shape("SELECT role, COUNT(*) FROM e GROUP BY role") == "group by"
    assert ev.shape("SELECT name FROM e ORDER BY salary DESC LIMIT 3") == "order by + limit"
    assert ev.shape("SELECT AVG(x) FROM e WHERE y = 'Joined'") == "aggregate"
    assert ev.shape("SELECT name FROM e WHERE role = 'Group by'") == "filter"
    assert ev.shape("SELECT name FROM e") == "select"


def test_compare_by_shape_counts_and_scores():
    rows = [example("q1", GOLD_TOP), example("q2", "SELECT COUNT(*) FROM employees"),
            example("q3", "SELECT COUNT(*) FROM employees WHERE salary > 50000")]
    base = ev.score(rows, ["nope", "nope", "nope"])
    tuned = ev.score(rows, [GOLD_TOP, "SELECT COUNT(*) FROM employees", "SELECT 0"])
    table = ev.compare_by_shape(base, tuned)
    assert table.loc["aggregate"].tolist() == [2, 0.0, 0.5]
    assert table.loc["order by + limit"].tolist() == [1, 0.0, 1.0]


def test_saved_scores_are_read_back_and_only_the_other_questions_scored(tmp_path, monkeypatch, capsys):
    rows = [example("q1", GOLD_TOP), example("q2", "SELECT COUNT(*) FROM employees")]
    saved = ev.save_scores(ev.score(rows[:1], ["SELECT 1"]), tmp_path / "test-scores.json")  # q1 scored, wrong
    asked = []

    def generated(model, tokenizer, examples, batch_size, desc):
        asked.extend(question(ex) for ex in examples)
        return [answer(ex) for ex in examples]  # right answers: a question scored here is right

    monkeypatch.setattr(ev, "generate_sql", generated)
    table = ev.evaluate(None, None, rows[::-1], reuse=saved)
    assert asked == ["q2"] and table.question.tolist() == ["q2", "q1"]  # in the order asked
    assert table.execution_match.tolist() == [True, False] and table.predicted[1] == "SELECT 1"  # q1's saved answer
    assert table.execution_match.dtype == bool
    assert "1 read from test-scores.json" in capsys.readouterr().out
    other_db = [example("q1", "SELECT 1", db="library")]  # the same words asked of another database: not the saved question
    assert ev.evaluate(None, None, other_db, reuse=saved).execution_match.tolist() == [True] and asked[-1] == "q1"
    assert ev.evaluate(None, None, rows, reuse=tmp_path / "missing.json").execution_match.tolist() == [True, True]
