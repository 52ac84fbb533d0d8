"""Build the recipe-assistant dataset: from a recipe's title and ingredient lines, list the
generic ingredients (the task of the OpenAI cookbook's fine-tuning walkthrough).

    python data/recipes/generate.py            # rewrite the committed files
    python data/recipes/generate.py --out DIR  # write elsewhere (the tests compare bytes)

Recipes come from the project's own vocabulary below. Some ingredients and some ways of
writing a quantity or a preparation are held out of training: validation and test recipes
use them, so scores measure extraction, not memory of the training answers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tools.generators import main, write_splits

SEED = 7
HERE = Path(__file__).resolve().parent
SIZES = {"train": 240, "validation": 50, "test": 50}
SYSTEM = ("You are a helpful recipe assistant. You are to extract the generic ingredients "
          "from each of the recipes provided.")

# generic name | how it is measured | ways it is written (;) | preparations that suit it (;)
VOCABULARY = """
flour | cup | flour;all-purpose flour;sifted flour;plain flour | sifted
sugar | cup | sugar;granulated sugar;white sugar |
brown sugar | cup | brown sugar;light brown sugar | firmly packed;packed
butter | fat | butter;margarine;unsalted butter | melted;softened
eggs | count | eggs;large eggs | beaten;well beaten
milk | cup | milk;whole milk;sweet milk | warm
baking soda | spoon | baking soda;soda |
baking powder | spoon | baking powder |
salt | spoon | salt;table salt |
pepper | spoon | pepper;black pepper;ground black pepper |
vanilla | spoon | vanilla;vanilla extract |
cinnamon | spoon | cinnamon;ground cinnamon |
nutmeg | spoon | nutmeg;ground nutmeg |
pecans | cup | pecans;pecan halves | chopped
walnuts | cup | walnuts;English walnuts | chopped
chocolate chips | cup | chocolate chips;semi-sweet chocolate chips |
raisins | cup | raisins;seedless raisins |
oats | cup | oats;quick oats;rolled oats |
coconut | cup | coconut;flaked coconut | shredded
bananas | count | bananas;ripe bananas | mashed
apples | count | apples;tart apples | peeled and sliced;chopped
buttermilk | cup | buttermilk |
oil | cup | oil;vegetable oil;salad oil |
cream cheese | package | cream cheese | softened
honey | cup | honey |
ground beef | weight | ground beef;lean ground beef;hamburger |
chicken | weight | chicken;chicken breasts;boneless chicken breasts | cooked and cubed;cubed
onion | count | onion;large onion;medium onion | chopped;diced;minced
green pepper | count | green pepper;bell pepper | chopped;diced
garlic | clove | garlic | minced;crushed
cream of mushroom soup | can | cream of mushroom soup |
cheddar cheese | cup | Cheddar cheese;sharp Cheddar cheese;Cheddar | grated;shredded
rice | cup | rice;long grain rice;uncooked rice | cooked
noodles | weight | noodles;egg noodles;wide noodles | cooked
tomato sauce | can | tomato sauce |
sour cream | cup | sour cream;dairy sour cream |
corn | can | corn;whole kernel corn | drained
green beans | can | green beans;French-style green beans | drained
potatoes | count | potatoes;medium potatoes | peeled and cubed;diced
bread crumbs | cup | bread crumbs;dry bread crumbs;cracker crumbs |
ham | weight | ham;cooked ham | cubed;diced
sausage | weight | sausage;pork sausage | browned
carrots | count | carrots;large carrots | sliced;grated
celery | stalk | celery | chopped;diced
tomatoes | count | tomatoes;ripe tomatoes | chopped;peeled and chopped
kidney beans | can | kidney beans;red kidney beans | drained
chili powder | spoon | chili powder |
water | cup | water;hot water;boiling water |
chicken broth | can | chicken broth |
mayonnaise | cup | mayonnaise;salad dressing |
lettuce | head | lettuce;iceberg lettuce | torn
cucumber | count | cucumber | sliced;peeled and diced
vinegar | spoon | vinegar;cider vinegar |
green onions | count | green onions;scallions | chopped;sliced
bacon | slice | bacon | crisp-cooked and crumbled
pineapple | can | crushed pineapple;pineapple chunks | drained
marshmallows | cup | marshmallows;miniature marshmallows |
mustard | spoon | mustard;prepared mustard |
parmesan cheese | cup | Parmesan cheese | grated
lemon juice | spoon | lemon juice;fresh lemon juice |
shrimp | weight | shrimp;cooked shrimp | peeled
olives | cup | olives;ripe olives | sliced
cabbage | head | cabbage | shredded
mushrooms | weight | mushrooms;fresh mushrooms | sliced
pumpkin | can | pumpkin;canned pumpkin |
cornstarch | spoon | cornstarch |
paprika | spoon | paprika |
oregano | spoon | oregano;dried oregano |
zucchini | count | zucchini | sliced;grated
spinach | package | spinach;frozen spinach | thawed and drained
"""

# Held out of training: these ingredients, preparations and quantities appear only in
# validation and test recipes.
HELD_INGREDIENTS = {"zucchini", "spinach", "oregano", "paprika", "mushrooms", "pumpkin", "cornstarch"}
HELD_PREPS = {"chopped": "coarsely chopped", "sliced": "thinly sliced", "softened": "at room temperature"}
HELD_QUANTITIES = {"2/3", "1 1/3"}

QUANTITIES = ["1", "2", "3", "1/2", "1/4", "3/4", "1 1/2", "2 1/2", "1/3", "4"] + sorted(HELD_QUANTITIES)
UNITS = {  # how each kind of measure is written; {q} is a quantity
    "cup": ["{q} c.", "{q} cup", "{q} cups", "{q} Tbsp."],
    "spoon": ["{q} tsp.", "{q} Tbsp.", "{q} teaspoon", "dash of", "pinch of"],
    "fat": ["{q} c.", "{q} stick", "{q} Tbsp.", "{q} lb."],
    "count": ["{q}"],
    "weight": ["{q} lb.", "{q} lbs.", "{q} oz.", "{q} (8 oz.) pkg."],
    "package": ["1 (8 oz.) pkg.", "1 (10 oz.) pkg.", "2 (3 oz.) pkg."],
    "can": ["1 can", "1 (10 3/4 oz.) can", "1 (16 oz.) can", "2 (8 oz.) cans"],
    "clove": ["{q} cloves", "1 clove"],
    "stalk": ["{q} stalks", "{q} ribs", "1 c."],
    "head": ["1 head", "1 small head", "1/2 head"],
    "slice": ["{q} slices", "{q} strips"],
}
FAMILIES = {  # dish words and the ingredients a recipe of that family draws from
    "baking": (["Cake", "Cookies", "Bread", "Muffins", "Pie", "Bars", "Squares", "Loaf"],
               "flour;sugar;brown sugar;butter;eggs;milk;baking soda;baking powder;salt;vanilla;"
               "cinnamon;nutmeg;pecans;walnuts;chocolate chips;raisins;oats;coconut;bananas;apples;"
               "buttermilk;oil;cream cheese;honey;pumpkin;zucchini;cornstarch;lemon juice"),
    "casserole": (["Casserole", "Bake", "Skillet", "Hot Dish", "Supreme", "Delight"],
                  "ground beef;chicken;onion;green pepper;garlic;cream of mushroom soup;cheddar cheese;"
                  "rice;noodles;tomato sauce;sour cream;corn;green beans;potatoes;bread crumbs;ham;"
                  "sausage;salt;pepper;butter;milk;mushrooms;spinach;paprika;oregano;parmesan cheese"),
    "soup": (["Soup", "Stew", "Chili", "Chowder", "Gumbo"],
             "water;chicken broth;onion;carrots;celery;potatoes;tomatoes;kidney beans;ground beef;"
             "chili powder;garlic;salt;pepper;cabbage;corn;ham;sausage;tomato sauce;rice;milk;"
             "butter;oregano;paprika;mushrooms;zucchini;spinach;cornstarch;noodles"),
    "salad": (["Salad", "Dip", "Slaw", "Spread", "Mold"],
              "lettuce;tomatoes;cucumber;mayonnaise;sour cream;celery;eggs;vinegar;sugar;cream cheese;"
              "green onions;bacon;pineapple;marshmallows;shrimp;olives;mustard;cabbage;salt;pepper;"
              "cheddar cheese;parmesan cheese;lemon juice;coconut;pecans;spinach;mushrooms;paprika"),
}
ADJECTIVES = ["Easy", "Mom's", "Grandma's", "Quick", "Country", "Old-Fashioned", "Holiday",
              "Favorite", "Best", "Aunt Ruth's", "Sunday", "Company", "Party", "Simple"]
SHARED_PREPS = ["fresh", "finely chopped"]


def parse_vocabulary(text: str = VOCABULARY) -> dict[str, tuple[str, list[str], list[str]]]:
    """generic name -> (measure, ways it is written, preparations)."""
    table = {}
    for line in text.strip().splitlines():
        generic, measure, surfaces, preps = (part.strip() for part in line.split("|"))
        table[generic] = (measure, surfaces.split(";"), [p for p in preps.split(";") if p])
    return table


INGREDIENTS = parse_vocabulary()


def ingredient_line(generic: str, rng: random.Random, held: bool) -> str:
    """One ingredient line, e.g. '1 1/2 c. sifted flour' or '2 large eggs, beaten'."""
    measure, surfaces, preps = INGREDIENTS[generic]
    quantities = [q for q in QUANTITIES if held or q not in HELD_QUANTITIES]
    amount = rng.choice(UNITS[measure]).format(q=rng.choice(quantities))
    name = rng.choice(surfaces)
    held_preps = [HELD_PREPS[p] for p in preps if held and p in HELD_PREPS]
    prep = rng.choice(preps + held_preps + [""] * (len(preps) + 1))
    if prep and prep not in held_preps and rng.random() < 0.5:
        return f"{amount} {prep} {name}"
    return f"{amount} {name}" + (f", {prep}" if prep else "")


def make_recipe(rng: random.Random, held: bool) -> tuple[str, list[str], list[str]]:
    """(title, ingredient lines, generic ingredients in order) of one made-up recipe."""
    family = rng.choice(sorted(FAMILIES))
    dishes, pool = FAMILIES[family]
    pool = pool.split(";")
    if not held:
        pool = [g for g in pool if g not in HELD_INGREDIENTS]
    chosen = rng.sample(pool, rng.randint(3, 8))
    if held and not HELD_INGREDIENTS & set(chosen):  # every held-out recipe tests something new
        extra = [g for g in pool if g in HELD_INGREDIENTS]
        chosen[rng.randrange(len(chosen))] = rng.choice(extra)
    lines, generics = [], []
    for g in chosen:
        if g == "salt" and "pepper" in chosen and "pepper" not in generics and rng.random() < 0.5:
            lines.append("salt and pepper to taste")
            generics += ["salt", "pepper"]
            continue
        if g == "pepper" and "pepper" in generics:
            continue
        lines.append(ingredient_line(g, rng, held))
        generics.append(g)
    feature = next((g for g in chosen if g not in ("salt", "pepper", "water", "sugar", "flour")), chosen[0])
    title = f"{rng.choice(ADJECTIVES)} {feature.title()} {rng.choice(dishes)}"
    return title, lines, generics


def to_example(title: str, lines: list[str], generics: list[str]) -> dict:
    """The chat example: system rule, the recipe as the cookbook writes it, the answer list."""
    user = f"Title: {title}\n\nIngredients: {json.dumps(lines)}\n\nGeneric ingredients: "
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": user},
                         {"role": "assistant", "content": json.dumps(generics)}]}


def build_splits(seed: int = SEED) -> dict[str, list[dict]]:
    """Train from the seen vocabulary; validation and test each recipe with something held out."""
    rng = random.Random(seed)
    seen, splits = set(), {}
    for split, size in SIZES.items():
        rows = []
        while len(rows) < size:
            recipe = make_recipe(rng, held=split != "train")
            example = to_example(*recipe)
            key = example["messages"][1]["content"]
            if key not in seen:
                seen.add(key)
                rows.append(example)
        splits[split] = rows
    return splits


def write_all(out: Path, seed: int = SEED) -> list[Path]:
    """Write train/validation/test JSONL under `out`; return the paths."""
    return write_splits(build_splits(seed), out)


if __name__ == "__main__":
    main(__doc__, write_all, HERE, SEED)
