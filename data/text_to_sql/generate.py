"""Build the text-to-SQL dataset: three SQLite databases and chat-format JSONL splits.

    python data/text_to_sql/generate.py            # rewrite the committed files
    python data/text_to_sql/generate.py --out DIR  # write elsewhere (the tests compare bytes)

Every question comes from an *intent* (one SQL shape) asked in one of several phrasings.
The last phrasing(s) of each intent and the last values of each slot are held out:
validation and test use only those, so scores measure generalisation, not recall.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tools.generators import main, write_splits

SEED = 18
HERE = Path(__file__).resolve().parent
SIZES = {"train": 600, "validation": 60, "test": 120}
SYSTEM = (
    "You translate questions into SQLite queries. Reply with one SQL query and nothing else.\n"
    "Schema:\n{schema}"
)

FIRST = ["Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kira", "Liam", "Mila", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara",
         "Umar", "Vera", "Wen", "Yara", "Zane"]
LAST = ["Silva", "Novak", "Berg", "Costa", "Meyer", "Rossi", "Kowalski", "Dubois", "Larsen",
        "Horvat", "Moreau", "Jansen", "Petrov", "Santos", "Fischer", "Nakamura", "Okafor", "Lind"]
ADJ = ["Silent", "Golden", "Hidden", "Last", "Broken", "Northern", "Quiet", "Burning", "Lost",
       "Paper", "Winter", "Crimson", "Hollow", "Distant", "Little", "Iron"]
NOUN = ["River", "Garden", "Empire", "Harbor", "Letter", "Mountain", "Orchard", "Engine",
        "Lantern", "Forest", "Bridge", "Kingdom", "Voyage", "Mirror", "Island", "Clock"]
GOODS = ["Lamp", "Kettle", "Puzzle", "Racket", "Notebook", "Drone", "Guitar", "Blender",
         "Backpack", "Helmet", "Candle", "Speaker", "Shovel", "Brush", "Stapler", "Ball"]


@dataclass(frozen=True)
class Domain:
    """Nouns and columns that let one set of intents speak about one database."""

    db_id: str
    schema: str
    table: str            # main table
    plural: str           # "employees"
    name_col: str         # "name" / "title"
    name_noun: str        # "names" / "titles"
    cat_col: str          # categorical column of the main table
    cat_phrase: str       # "with the role {v}"
    cat_noun: str         # "role"
    cat_values: tuple[str, ...]
    num_col: str
    num_noun: str         # "salary"
    num_train: tuple[int, ...]
    num_held: tuple[int, ...]
    parent: str           # parent table
    parent_noun: str      # "department"
    fk: str               # main.fk -> parent.id
    attr_col: str         # categorical column of the parent
    attr_phrase: str      # "in a department located in {v}"
    attr_values: tuple[str, ...]
    parent_names: tuple[str, ...]
    by_parent: str        # "in the {v} department"


DOMAINS = [
    Domain(
        db_id="company",
        schema="departments(id, name, city)\n"
               "employees(id, name, role, salary, hire_year, department_id)",
        table="employees", plural="employees", name_col="name", name_noun="names",
        cat_col="role", cat_phrase="working as {v}", cat_noun="role",
        cat_values=("Engineer", "Analyst", "Manager", "Designer", "Accountant", "Recruiter",
                    "Technician", "Consultant", "Lawyer", "Architect", "Chemist"),
        num_col="salary", num_noun="salary",
        num_train=(40000, 50000, 60000, 70000, 80000, 90000, 100000),
        num_held=(45000, 65000, 85000),
        parent="departments", parent_noun="department", fk="department_id",
        attr_col="city", attr_phrase="in a department located in {v}",
        attr_values=("Berlin", "Lisbon", "Madrid", "Oslo", "Dublin", "Vienna", "Prague", "Athens"),
        parent_names=("Engineering", "Sales", "Marketing", "Finance", "Support", "Research",
                      "Legal", "Operations"),
        by_parent="in the {v} department",
    ),
    Domain(
        db_id="library",
        schema="authors(id, name, country, birth_year)\n"
               "books(id, title, genre, pages, published_year, author_id)",
        table="books", plural="books", name_col="title", name_noun="titles",
        cat_col="genre", cat_phrase="in the {v} genre", cat_noun="genre",
        cat_values=("Fantasy", "Mystery", "History", "Poetry", "Romance", "Science",
                    "Travel", "Horror", "Drama", "Comics", "Biography"),
        num_col="pages", num_noun="page count",
        num_train=(100, 150, 200, 300, 400, 500, 600),
        num_held=(250, 350, 450),
        parent="authors", parent_noun="author", fk="author_id",
        attr_col="country", attr_phrase="written by an author from {v}",
        attr_values=("Brazil", "Japan", "Kenya", "Canada", "Norway", "Chile", "Ghana", "Peru"),
        parent_names=tuple(f"{first} {last}" for first, last in zip(FIRST[::3], LAST[::2], strict=False)),
        by_parent="written by {v}",
    ),
    Domain(
        db_id="shop",
        schema="suppliers(id, name, country)\n"
               "products(id, name, category, price, stock, supplier_id)\n"
               "orders(id, product_id, quantity, order_year)",
        table="products", plural="products", name_col="name", name_noun="names",
        cat_col="category", cat_phrase="in the {v} category", cat_noun="category",
        cat_values=("Toys", "Garden", "Kitchen", "Sports", "Music", "Office", "Beauty",
                    "Outdoor", "Garage", "Health", "Pets"),
        num_col="price", num_noun="price",
        num_train=(10, 20, 30, 50, 100, 150, 200),
        num_held=(15, 35, 75),
        parent="suppliers", parent_noun="supplier", fk="supplier_id",
        attr_col="country", attr_phrase="from a supplier based in {v}",
        attr_values=("Italy", "Mexico", "India", "Poland", "Vietnam", "Egypt", "Turkey", "Spain"),
        parent_names=("Acme", "Northwind", "Bluebird", "Helios", "Kestrel", "Orion",
                      "Pinewood", "Zenith"),
        by_parent="supplied by {v}",
    ),
]

# Each intent: (name, SQL template, phrasings). The last HELD phrasings are held out.
HELD = 2
INTENTS: list[tuple[str, str, list[str]]] = [
    ("list_by_cat", "SELECT {name_col} FROM {table} WHERE {cat_col} = '{v}'", [
        "List the {name_noun} of all {plural} {cat_phrase}.",
        "Which {plural} are {cat_phrase}?",
        "Show me every {plural} {cat_phrase}, just the {name_noun}.",
        "What are the {name_noun} of the {plural} {cat_phrase}?",
        "Give the {name_noun} of {plural} {cat_phrase}.",
    ]),
    ("list_num_gt", "SELECT {name_col} FROM {table} WHERE {num_col} > {v}", [
        "Names of {plural} with {num_noun} over {v}?",
        "Which {plural} have a {num_noun} above {v}?",
        "List the {name_noun} of {plural} whose {num_noun} is greater than {v}.",
        "Show {plural} with a {num_noun} of more than {v}.",
        "Find the {plural} whose {num_noun} exceeds {v}.",
    ]),
    ("list_num_lt", "SELECT {name_col} FROM {table} WHERE {num_col} < {v}", [
        "Names of {plural} with {num_noun} under {v}?",
        "Which {plural} have a {num_noun} below {v}?",
        "List the {name_noun} of {plural} whose {num_noun} is less than {v}.",
        "Show {plural} with a {num_noun} under {v}.",
        "Find the {plural} whose {num_noun} is smaller than {v}.",
    ]),
    ("count_by_cat", "SELECT COUNT(*) FROM {table} WHERE {cat_col} = '{v}'", [
        "Number of {plural} {cat_phrase}?",
        "How many {plural} are {cat_phrase}?",
        "Count the {plural} {cat_phrase}.",
        "What is the number of {plural} {cat_phrase}?",
        "Tell me how many {plural} there are {cat_phrase}.",
    ]),
    ("avg_by_cat", "SELECT AVG({num_col}) FROM {table} WHERE {cat_col} = '{v}'", [
        "Give the average {num_noun} for {plural} {cat_phrase}.",
        "What is the average {num_noun} of {plural} {cat_phrase}?",
        "Compute the mean {num_noun} for {plural} {cat_phrase}.",
        "Average {num_noun} of the {plural} {cat_phrase}?",
        "On average, what {num_noun} do {plural} {cat_phrase} have?",
    ]),
    ("max_by_cat", "SELECT MAX({num_col}) FROM {table} WHERE {cat_col} = '{v}'", [
        "Show the maximum {num_noun} among {plural} {cat_phrase}.",
        "What is the highest {num_noun} among {plural} {cat_phrase}?",
        "Find the maximum {num_noun} of {plural} {cat_phrase}.",
        "What is the largest {num_noun} for {plural} {cat_phrase}?",
        "Which {num_noun} is the top one among {plural} {cat_phrase}?",
    ]),
    ("min_by_cat", "SELECT MIN({num_col}) FROM {table} WHERE {cat_col} = '{v}'", [
        "Show the minimum {num_noun} among {plural} {cat_phrase}.",
        "What is the lowest {num_noun} among {plural} {cat_phrase}?",
        "Find the minimum {num_noun} of {plural} {cat_phrase}.",
        "What is the smallest {num_noun} for {plural} {cat_phrase}?",
        "Which {num_noun} is the bottom one among {plural} {cat_phrase}?",
    ]),
    ("group_count", "SELECT {cat_col}, COUNT(*) FROM {table} GROUP BY {cat_col}", [
        "How many {plural} are there in each {cat_noun}?",
        "Count the {plural} per {cat_noun}.",
        "For every {cat_noun}, give the number of {plural}.",
        "Show the {plural} count broken down by {cat_noun}.",
        "List each {cat_noun} with how many {plural} it has.",
    ]),
    ("group_avg", "SELECT {cat_col}, AVG({num_col}) FROM {table} GROUP BY {cat_col}", [
        "What is the average {num_noun} of {plural} in each {cat_noun}?",
        "Show the mean {num_noun} per {cat_noun}.",
        "For every {cat_noun}, compute the average {num_noun} of its {plural}.",
        "Give the average {num_noun} grouped by {cat_noun}.",
        "List each {cat_noun} with the mean {num_noun} of its {plural}.",
    ]),
    ("top_k", "SELECT {name_col} FROM {table} ORDER BY {num_col} DESC LIMIT {v}", [
        "Top {v} {plural} ranked by {num_noun}, highest first.",
        "Which {v} {plural} have the highest {num_noun}?",
        "List the top {v} {plural} by {num_noun}.",
        "Show the {v} {plural} with the largest {num_noun}.",
        "Give me the {name_noun} of the {v} {plural} with the greatest {num_noun}.",
    ]),
    ("bottom_k", "SELECT {name_col} FROM {table} ORDER BY {num_col} ASC LIMIT {v}", [
        "The {v} {plural} ranked by {num_noun}, lowest first.",
        "Which {v} {plural} have the lowest {num_noun}?",
        "List the bottom {v} {plural} by {num_noun}.",
        "Show the {v} {plural} with the smallest {num_noun}.",
        "Give me the {name_noun} of the {v} {plural} with the least {num_noun}.",
    ]),
    ("join_attr",
     "SELECT {table}.{name_col} FROM {table} JOIN {parent} ON {table}.{fk} = {parent}.id "
     "WHERE {parent}.{attr_col} = '{v}'", [
        "Give me the {plural} {attr_phrase}.",
        "List the {name_noun} of {plural} {attr_phrase}.",
        "Which {plural} are {attr_phrase}?",
        "Show all {plural} {attr_phrase}.",
        "Find every one of the {plural} {attr_phrase}.",
    ]),
    ("join_parent",
     "SELECT {table}.{name_col} FROM {table} JOIN {parent} ON {table}.{fk} = {parent}.id "
     "WHERE {parent}.name = '{v}'", [
        "Give the {name_noun} of all {plural} {by_parent}.",
        "Which {plural} are {by_parent}?",
        "List the {name_noun} of the {plural} {by_parent}.",
        "Show every one of the {plural} {by_parent}.",
        "What {plural} are there {by_parent}?",
    ]),
    ("join_group",
     "SELECT {parent}.name, COUNT(*) FROM {table} JOIN {parent} ON {table}.{fk} = {parent}.id "
     "GROUP BY {parent}.name", [
        "How many {plural} does each {parent_noun} have?",
        "Count the {plural} for every {parent_noun}.",
        "For each {parent_noun}, give the number of {plural}.",
        "Show each {parent_noun} name with its number of {plural}.",
        "Break down the {plural} count by {parent_noun}.",
    ]),
]
K_TRAIN, K_HELD = (2, 3, 5, 8, 10), (4, 6, 7)
ATTR_OF = {"list_by_cat": "cat", "count_by_cat": "cat", "avg_by_cat": "cat",
           "max_by_cat": "cat", "min_by_cat": "cat", "list_num_gt": "num", "list_num_lt": "num",
           "top_k": "k", "bottom_k": "k", "join_attr": "attr", "join_parent": "parent"}


def slot_values(domain: Domain, slot: str | None, held: bool) -> tuple:
    """Values a slot may take; held-out values are the last three of each list."""
    if slot is None:
        return (None,)
    pools = {"cat": domain.cat_values, "attr": domain.attr_values,
             "parent": domain.parent_names}
    if slot in pools:
        return pools[slot][-3:] if held else pools[slot][:-3]
    if slot == "num":
        return domain.num_held if held else domain.num_train
    return K_HELD if held else K_TRAIN


def render(domain: Domain, template: str, value) -> str:
    """Fill a question or SQL template with the domain's words and one value."""
    words = {k: getattr(domain, k) for k in domain.__dataclass_fields__}
    for key in ("cat_phrase", "attr_phrase", "by_parent"):
        words[key] = words[key].format(v=value)
    return template.format(v=value, **words)


def example(domain: Domain, question: str, sql: str) -> dict:
    """One chat-format example: schema in the system message, question, gold SQL."""
    return {"db_id": domain.db_id, "messages": [
        {"role": "system", "content": SYSTEM.format(schema=domain.schema)},
        {"role": "user", "content": question},
        {"role": "assistant", "content": sql},
    ]}


def candidates(held: bool) -> dict[tuple[str, str], list[dict]]:
    """Every (domain, intent) with all its examples for the seen or held-out side."""
    out = {}
    for domain in DOMAINS:
        for name, sql, phrasings in INTENTS:
            chosen = phrasings[-HELD:] if held else phrasings[:-HELD]
            out[domain.db_id, name] = [
                example(domain, render(domain, p, v), render(domain, sql, v))
                for p in chosen for v in slot_values(domain, ATTR_OF.get(name), held)]
    return out


def sample(pools: dict, n: int, rng: random.Random, used: set[str]) -> list[dict]:
    """Round-robin over (domain, intent) so every SQL shape is represented evenly."""
    queues = {key: rng.sample(items, len(items)) for key, items in sorted(pools.items())}
    picked: list[dict] = []
    while len(picked) < n and any(queues.values()):
        for key in sorted(queues):
            while queues[key] and len(picked) < n:
                ex = queues[key].pop()
                if ex["messages"][1]["content"] not in used:
                    used.add(ex["messages"][1]["content"])
                    picked.append(ex)
                    break
    if len(picked) < n:
        raise ValueError(f"only {len(picked)} distinct questions available, {n} requested")
    rng.shuffle(picked)
    return picked


def build_splits(seed: int = SEED) -> dict[str, list[dict]]:
    """Train from seen phrasings and values; validation and test from held-out ones."""
    rng = random.Random(seed)
    used: set[str] = set()
    train = sample(candidates(held=False), SIZES["train"], rng, used)
    held = candidates(held=True)
    test = sample(held, SIZES["test"], rng, used)
    validation = sample(held, SIZES["validation"], rng, used)
    return {"train": train, "validation": validation, "test": test}


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def database_rows(domain: Domain, rng: random.Random) -> dict[str, list[tuple]]:
    """Rows for one database; every categorical value appears at least twice."""
    parents = [(i + 1, name, domain.attr_values[i % len(domain.attr_values)])
               for i, name in enumerate(domain.parent_names)]
    n_main = 48
    cats = [domain.cat_values[i % len(domain.cat_values)] for i in range(n_main)]
    rng.shuffle(cats)
    main = []
    for i, cat in enumerate(cats):
        fk = 1 + i % len(parents)
        if domain.db_id == "company":
            main.append((i + 1, person(rng), cat, rng.randrange(30, 121) * 1000,
                         rng.randrange(2005, 2025), fk))
        elif domain.db_id == "library":
            main.append((i + 1, f"The {rng.choice(ADJ)} {rng.choice(NOUN)} {i + 1}", cat,
                         rng.randrange(90, 700), rng.randrange(1950, 2025), fk))
        else:
            main.append((i + 1, f"{rng.choice(ADJ)} {rng.choice(GOODS)} {i + 1}", cat,
                         round(rng.uniform(3, 300), 2), rng.randrange(0, 400), fk))
    if domain.db_id == "library":
        parents = [(i, n, c, rng.randrange(1930, 1995)) for i, n, c in parents]
    rows = {domain.parent: parents, domain.table: main}
    if domain.db_id == "shop":
        rows["orders"] = [(i + 1, rng.randrange(1, n_main + 1), rng.randrange(1, 20),
                           rng.randrange(2019, 2025)) for i in range(80)]
    return rows


def write_database(domain: Domain, path: Path, rng: random.Random) -> None:
    """Create one SQLite file from the schema line and the generated rows."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    with con:
        for line in domain.schema.splitlines():
            table, cols = line.rstrip(")").split("(")
            con.execute(f"CREATE TABLE {table} ({cols})")
        for table, rows in database_rows(domain, rng).items():
            marks = ", ".join("?" * len(rows[0]))
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    con.close()


def write_all(out: Path, seed: int = SEED) -> list[Path]:
    """Write the databases and the three JSONL splits under `out`; return the paths."""
    rng = random.Random(seed)
    (out / "databases").mkdir(parents=True, exist_ok=True)
    paths = []
    for domain in DOMAINS:
        path = out / "databases" / f"{domain.db_id}.sqlite"
        write_database(domain, path, rng)
        paths.append(path)
    return paths + write_splits(build_splits(seed), out)


if __name__ == "__main__":
    main(__doc__, write_all, HERE, SEED)
