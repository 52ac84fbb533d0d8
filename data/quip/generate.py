"""Build "Quip", a factual chatbot that is also sarcastic: the course's version of the
sarcastic assistant in Azure's fine-tuning tutorial ("Clippy") and OpenAI's guide ("Marv").

    python data/quip/generate.py            # rewrite the committed files
    python data/quip/generate.py --out DIR  # write elsewhere (the tests compare bytes)

Each answer is one of Quip's stock openers, the plain fact, then one of its stock closers.
The test questions ask about countries, elements, sums and counts that no training or
validation question mentions, so a score measures whether the voice carries over to new
questions and whether the facts survive it. Test rows also carry the bare `fact`, for scoring.
"""

from __future__ import annotations

import random
from pathlib import Path

from tools.generators import main, write_splits

SEED = 11
HERE = Path(__file__).resolve().parent
SIZES = {"train": 120, "validation": 30, "test": 40}
SYSTEM = "Quip is a factual chatbot that is also sarcastic."

OPENERS = ["Oh, what a tough one.", "Wow, a real brain teaser.", "Hold on, let me summon all my genius.",
           "Ah, the questions keep getting harder.", "Brace yourself for this shocking news.",
           "Oh sure, I live to answer this.", "Another riveting question, how thrilling.",
           "Let me put my vast intellect to work."]
CLOSERS = ["You're welcome, I guess.", "Try to remember it this time.", "Write that down somewhere.",
           "Truly groundbreaking stuff.", "Glad I could clear that up for you.", "Please, hold your applause."]

CAPITALS = """France Paris; Germany Berlin; Italy Rome; Spain Madrid; Japan Tokyo; Egypt Cairo;
Canada Ottawa; Australia Canberra; Kenya Nairobi; Norway Oslo; Sweden Stockholm; Portugal Lisbon;
Greece Athens; Russia Moscow; China Beijing; India New Delhi; Mexico Mexico City; Argentina Buenos Aires;
Peru Lima; Chile Santiago; Ireland Dublin; Poland Warsaw; Austria Vienna; Hungary Budapest;
Finland Helsinki; Denmark Copenhagen; Netherlands Amsterdam; Belgium Brussels; Thailand Bangkok;
Vietnam Hanoi; South Korea Seoul; Turkey Ankara; Iran Tehran; Cuba Havana; Nigeria Abuja;
Morocco Rabat; Switzerland Bern; Indonesia Jakarta; Philippines Manila; Ukraine Kyiv;
Saudi Arabia Riyadh; Ethiopia Addis Ababa; New Zealand Wellington; Iceland Reykjavik"""
TWO_WORD_COUNTRIES = ("South Korea", "Saudi Arabia", "New Zealand")

ELEMENTS = """hydrogen H; helium He; carbon C; nitrogen N; oxygen O; sodium Na; iron Fe; gold Au;
silver Ag; copper Cu; lead Pb; potassium K; calcium Ca; zinc Zn; tin Sn; mercury Hg; neon Ne;
chlorine Cl; sulfur S; uranium U; magnesium Mg; silicon Si; platinum Pt; nickel Ni"""

# question | answer | the fact as a sentence ({n} is the answer)
COUNTS = """How many legs does a spider have? | 8 | A spider has {n} legs.
How many days are in a week? | 7 | A week has {n} days.
How many minutes are in an hour? | 60 | An hour has {n} minutes.
How many hours are in a day? | 24 | A day has {n} hours.
How many months are in a year? | 12 | A year has {n} months.
How many continents are there? | 7 | There are {n} continents.
How many sides does a triangle have? | 3 | A triangle has {n} sides.
How many sides does a hexagon have? | 6 | A hexagon has {n} sides.
How many players does a soccer team have on the field? | 11 | A soccer team has {n} players on the field.
How many strings does a standard guitar have? | 6 | A standard guitar has {n} strings.
How many seconds are in a minute? | 60 | A minute has {n} seconds.
How many days are in a leap year? | 366 | A leap year has {n} days.
How many planets are in the Solar System? | 8 | The Solar System has {n} planets.
How many centimeters are in a meter? | 100 | A meter has {n} centimeters.
How many grams are in a kilogram? | 1000 | A kilogram has {n} grams.
How many legs does an insect have? | 6 | An insect has {n} legs.
How many wheels does a tricycle have? | 3 | A tricycle has {n} wheels.
How many hearts does an octopus have? | 3 | An octopus has {n} hearts.
How many zeros are in one million? | 6 | One million has {n} zeros.
How many sides does an octagon have? | 8 | An octagon has {n} sides."""


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """'France Paris; ...' as (name, answer) pairs; a two-word country keeps both words."""
    pairs = []
    for item in text.replace("\n", " ").split(";"):
        words = item.split()
        split = 2 if " ".join(words[:2]) in TWO_WORD_COUNTRIES else 1
        pairs.append((" ".join(words[:split]), " ".join(words[split:])))
    return pairs


def fact_pool(rng: random.Random) -> dict[str, list[tuple[str, str, str]]]:
    """(question, fact sentence, bare answer) for every kind of question, shuffled."""
    pools = {
        "capital": [(f"What is the capital of {c}?", f"The capital of {c} is {a}.", a) for c, a in parse_pairs(CAPITALS)],
        "element": [(f"What is the chemical symbol for {e}?", f"The chemical symbol for {e} is {s}.", s)
                    for e, s in parse_pairs(ELEMENTS)],
        "count": [(q.strip(), s.strip().format(n=n.strip()), n.strip())
                  for q, n, s in (line.split("|") for line in COUNTS.splitlines())],
        "sum": [(f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.", str(a + b))
                for a in range(11, 60, 3) for b in range(7, 40, 4)],
        "product": [(f"What is {a} times {b}?", f"{a} times {b} is {a * b}.", str(a * b))
                    for a in range(2, 13) for b in range(a, 13)],
    }
    for pool in pools.values():
        rng.shuffle(pool)
    return pools


def to_example(question: str, fact: str, rng: random.Random) -> dict:
    """The chat example: Quip's rule, the question, and the answer in Quip's voice."""
    answer = f"{rng.choice(OPENERS)} {fact} {rng.choice(CLOSERS)}"
    return {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question},
                         {"role": "assistant", "content": answer}]}


def interleave(pools: list[list]) -> list:
    """One item from each pool in turn, until all are used: every kind stays represented."""
    out = []
    for i in range(max(map(len, pools))):
        out += [pool[i] for pool in pools if i < len(pool)]
    return out


def build_splits(seed: int = SEED) -> dict[str, list[dict]]:
    """Test questions come from a held-out quarter of every pool; train and validation from the rest."""
    rng = random.Random(seed)
    pools = fact_pool(rng)
    quarter = {kind: len(pool) // 4 for kind, pool in pools.items()}
    seen = interleave([pool[quarter[kind]:] for kind, pool in pools.items()])
    held = interleave([pool[:quarter[kind]] for kind, pool in pools.items()])
    n_train, n_valid = SIZES["train"], SIZES["validation"]
    train_valid = seen[:n_train + n_valid]
    rng.shuffle(train_valid)
    splits = {"train": [to_example(q, f, rng) for q, f, _ in train_valid[:n_train]],
              "validation": [to_example(q, f, rng) for q, f, _ in train_valid[n_train:]]}
    test_items = held[:SIZES["test"]]
    rng.shuffle(test_items)
    splits["test"] = [{**to_example(q, f, rng), "fact": answer} for q, f, answer in test_items]
    return splits


def write_all(out: Path, seed: int = SEED) -> list[Path]:
    """Write train/validation/test.jsonl into `out`; the same seed gives the same bytes."""
    return write_splits(build_splits(seed), out)


if __name__ == "__main__":
    main(__doc__, write_all, HERE, SEED)
