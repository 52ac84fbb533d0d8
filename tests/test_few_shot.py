"""Few-shot prompts: shots inserted as chat turns, from the same database, random or retrieved."""

from helpers.data import datasets
from helpers.eval import few_shot, sql


def row(question, sql, db="company"):
    return {"db_id": db, "messages": [{"role": "system", "content": f"schema of {db}"},
                                      {"role": "user", "content": question},
                                      {"role": "assistant", "content": sql}]}


POOL = [row("How many employees are there?", "SELECT COUNT(*) FROM employees"),
        row("Which books are in the Poetry genre?", "SELECT title FROM books WHERE genre = 'Poetry'", "library"),
        row("List employees working as Engineer.", "SELECT name FROM employees WHERE role = 'Engineer'"),
        row("What is the highest salary of employees?", "SELECT MAX(salary) FROM employees")]


def test_shots_come_before_the_question_and_the_answer_stays_the_gold():
    query = row("List employees working as Analyst.", "SELECT name FROM employees WHERE role = 'Analyst'")
    prompt = few_shot.with_examples(query, POOL[:1])
    assert [m["role"] for m in prompt["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert datasets.answer(prompt) == "SELECT name FROM employees WHERE role = 'Analyst'"
    assert datasets.prompt_messages(prompt)[-1]["content"] == "List employees working as Analyst."
    assert datasets.prompt_messages(prompt)[2]["content"] == "SELECT COUNT(*) FROM employees"
    assert query["messages"][1]["content"] == "List employees working as Analyst."  # input untouched


def test_retrieval_ranks_by_shared_rare_words_within_the_same_database():
    query = row("List employees working as Analyst.", "")
    top = few_shot.Retriever(POOL).top(query, 2)
    assert [few_shot.question(r) for r in top] == ["List employees working as Engineer.",
                                                   "How many employees are there?"]
    assert [r["db_id"] for r in few_shot.Retriever(POOL).top(query, 5)] == ["company"] * 3
    assert len(few_shot.retrieved_prompts([query], POOL, 5)[0]["messages"]) == 1 + 2 * 3 + 2  # 3 company rows


def test_random_shots_are_seeded_and_never_cross_databases():
    queries = [row("Books by Tolkien?", "", "library"), row("Employees in Madrid?", "")]
    first = few_shot.random_prompts(queries, POOL, 2, seed=7)
    assert first == few_shot.random_prompts(queries, POOL, 2, seed=7)
    library_shots = [m["content"] for m in first[0]["messages"][1:-2] if m["role"] == "user"]
    assert library_shots == ["Which books are in the Poetry genre?"]  # the only library example
    company = [m["content"] for m in first[1]["messages"][1:-2] if m["role"] == "user"]
    assert len(company) == 2 and set(company) <= {few_shot.question(r) for r in POOL if r["db_id"] == "company"}


def test_retrieved_examples_share_the_test_questions_shape_more_often_than_random_ones():
    train, test = datasets.load_split("train"), datasets.load_split("test", limit=40, seed=0)

    def same_shape(prompts):
        hits = [sql.shape(m["content"]) == sql.shape(datasets.answer(p))
                for p in prompts for m in datasets.prompt_messages(p) if m["role"] == "assistant"]
        return sum(hits) / len(hits)

    assert same_shape(few_shot.retrieved_prompts(test, train, 4)) > same_shape(
        few_shot.random_prompts(test, train, 4)) + 0.2
