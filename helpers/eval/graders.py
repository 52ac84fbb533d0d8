"""Graders, as OpenAI's and Azure OpenAI's reinforcement fine-tuning define them: a JSON object that
turns one model sample (and the dataset item it answers) into a score in [0, 1]. Five types:

- `string_check`: `input` against `reference` with `eq`, `ne`, `like` (contains) or `ilike` (contains,
  ignoring case): 1 or 0;
- `text_similarity`: `input` against `reference` by `evaluation_metric` (`fuzzy_match`, `bleu`, `gleu`,
  `meteor`, `rouge_1`..`rouge_5`, `rouge_l`, `cosine`);
- `python`: `grade(sample, item)` from `source`, run in a sandboxed process (`helpers.eval.sandbox`);
- `score_model`: a model reads `input` (chat messages) and answers with a number in `range`;
- `multi`: named graders combined by a `calculate_output` formula.

Text fields are templates: `{{ item.answer }}` is the dataset line's field, `{{ sample.output_text }}` the
model's reply, `{{ sample.output_json.x }}` a field of the reply parsed as JSON. `validate` checks a grader
the way the providers' validate endpoint does; `run` grades one sample and returns the run endpoint's
response: `reward`, `metadata` (with its `errors` flags), `sub_rewards`.

Where the providers compute a metric with a model or library this course does not ship, the emulator
says what it uses instead: `cosine` is the cosine of word-count vectors, not of embeddings, and
`meteor` matches exact words only (no stems, no synonyms).
"""

from __future__ import annotations

import ast
import difflib
import functools
import json
import math
import operator
import re
import time
from collections import Counter
from collections.abc import Callable

from helpers.data.chat_format import MissingField, field_value
from helpers.eval import sandbox

TYPES = ("string_check", "text_similarity", "python", "score_model", "multi")
OPERATIONS = ("eq", "ne", "like", "ilike")
METRICS = ("fuzzy_match", "bleu", "gleu", "meteor", "cosine", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5",
           "rouge_l")
TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
VARIABLE = re.compile(r"(item|sample)(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])+")
ERROR_FLAGS = ("formula_parse_error", "invalid_variable_error", "model_grader_parse_error", "model_grader_refusal_error",
               "model_grader_server_error", "other_error", "python_grader_runtime_error", "python_grader_server_error",
               "sample_parse_error", "truncated_observation_error", "unresponsive_reward_error")
SANDBOX_ERRORS = {"runtime": "python_grader_runtime_error", "invalid_score": "python_grader_runtime_error",
                  "server": "python_grader_server_error", "unresponsive": "unresponsive_reward_error",
                  "output": "truncated_observation_error"}


class GraderError(ValueError):
    """A grader the providers would refuse: `param` is the path of the bad field (`grader.graders.a.input`)."""

    def __init__(self, message: str, param: str = "grader"):
        super().__init__(message)
        self.param = param


class VariableError(KeyError):
    """A template names a field the item or the sample does not have."""

    def __str__(self):
        return self.args[0]


# -- templates --------------------------------------------------------------------------------
def namespaces(model_sample: str, item: dict | None) -> dict:
    """What templates may read: `item`, and `sample` with `output_text` and, when the reply is JSON,
    `output_json`."""
    sample = {"output_text": model_sample}
    try:
        sample["output_json"] = json.loads(model_sample)
    except (TypeError, ValueError):
        pass
    return {"item": item or {}, "sample": sample}


def lookup(path: str, scope: dict):
    """The value `item.a.b` or `sample.output_json.x[0]` names, or VariableError naming what is missing."""
    if not VARIABLE.fullmatch(path):
        raise VariableError(f"{{{{ {path} }}}} is not a variable: write item.<field> or sample.<field>")
    try:
        return field_value(path, scope)
    except MissingField as missing:
        raise VariableError(f"{{{{ {path} }}}}: {missing} does not exist in this "
                            f"{'dataset line' if missing.walked[0] == 'item' else 'sample'}") from None


def render(text: str, scope: dict) -> str:
    """A template with each `{{ variable }}` replaced by its value (JSON for lists and objects)."""
    def value(match):
        found = lookup(match.group(1), scope)
        return found if isinstance(found, str) else json.dumps(found)
    return TEMPLATE.sub(value, text)


def variables(grader: dict) -> set[str]:
    """Every `item.*` variable a grader's templates read, for checking a training file against it."""
    found = set()

    def walk(value):
        if isinstance(value, str):
            found.update(m.group(1) for m in TEMPLATE.finditer(value) if m.group(1).startswith("item"))
        elif isinstance(value, dict):
            for key, inner in value.items():
                if key != "source":
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)
    walk(grader)
    return found


# -- text similarity --------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def _f1(overlap: int, predicted: int, reference: int) -> float:
    if not overlap:
        return 0.0
    precision, recall = overlap / predicted, overlap / reference
    return 2 * precision * recall / (precision + recall)


def bleu(text: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU: the geometric mean of 1..4-gram precisions (add-one smoothing above unigrams) times
    the brevity penalty."""
    hyp, ref = _words(text), _words(reference)
    if not hyp or not ref:
        return 0.0
    logs = []
    for n in range(1, max_n + 1):
        h, r = _ngrams(hyp, n), _ngrams(ref, n)
        overlap, total = sum((h & r).values()), max(sum(h.values()), 0)
        if n == 1 and not overlap:
            return 0.0
        logs.append(math.log((overlap + (n > 1)) / (total + (n > 1))) if total or n > 1 else float("-inf"))
    penalty = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return penalty * math.exp(sum(logs) / max_n)


def gleu(text: str, reference: str, max_n: int = 4) -> float:
    """Google-BLEU: all 1..4-grams together, the smaller of their precision and recall."""
    hyp, ref = _words(text), _words(reference)
    h = sum((_ngrams(hyp, n) for n in range(1, max_n + 1)), Counter())
    r = sum((_ngrams(ref, n) for n in range(1, max_n + 1)), Counter())
    if not h or not r:
        return 0.0
    overlap = sum((h & r).values())
    return min(overlap / sum(h.values()), overlap / sum(r.values()))


def meteor(text: str, reference: str, alpha: float = 0.9, beta: float = 3.0, gamma: float = 0.5) -> float:
    """METEOR on exact word matches: a recall-weighted F-mean times a penalty for matches in scattered
    chunks (no stemming, no synonyms)."""
    hyp, ref = _words(text), _words(reference)
    used, alignment = set(), []
    for i, word in enumerate(hyp):
        j = next((j for j, w in enumerate(ref) if w == word and j not in used), None)
        if j is not None:
            used.add(j)
            alignment.append((i, j))
    matches = len(alignment)
    if not matches:
        return 0.0
    precision, recall = matches / len(hyp), matches / len(ref)
    fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
    chunks = 1 + sum(1 for (i, j), (k, m) in zip(alignment, alignment[1:], strict=False) if not (k == i + 1 and m == j + 1))
    return fmean * (1 - gamma * (chunks / matches) ** beta)


def rouge_n(text: str, reference: str, n: int) -> float:
    """ROUGE-N F1: overlap of n-grams."""
    h, r = _ngrams(_words(text), n), _ngrams(_words(reference), n)
    return _f1(sum((h & r).values()), sum(h.values()), sum(r.values()))


def rouge_l(text: str, reference: str) -> float:
    """ROUGE-L F1: the longest common subsequence of words."""
    hyp, ref = _words(text), _words(reference)
    previous = [0] * (len(ref) + 1)
    for word in hyp:
        row = [0]
        for j, other in enumerate(ref):
            row.append(previous[j] + 1 if word == other else max(previous[j + 1], row[j]))
        previous = row
    return _f1(previous[-1], len(hyp), len(ref))


def cosine(text: str, reference: str) -> float:
    """Cosine of the two texts' word-count vectors (the providers use embeddings)."""
    a, b = Counter(_words(text)), Counter(_words(reference))
    dot = sum(a[w] * b[w] for w in a)
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def fuzzy_match(text: str, reference: str) -> float:
    """Normalised similarity of the two strings: 2 x matching characters / total characters."""
    return difflib.SequenceMatcher(None, text, reference, autojunk=False).ratio()


SIMILARITY: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": fuzzy_match, "bleu": bleu, "gleu": gleu, "meteor": meteor, "cosine": cosine, "rouge_l": rouge_l,
    **{f"rouge_{n}": functools.partial(rouge_n, n=n) for n in range(1, 6)}}


# -- the multi grader's formula ---------------------------------------------------------------
FUNCTIONS = {"min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil, "exp": math.exp,
             "sqrt": math.sqrt, "log": math.log}
OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
             ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def formula(expression: str, names: set[str]) -> ast.Expression:
    """Parse `calculate_output`: numbers, the sub-graders' names, + - * / ^ (power) and min, max, abs, floor,
    ceil, exp, sqrt, log. GraderError names what is not allowed."""
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as err:
        raise GraderError(f"calculate_output does not parse: {err.msg} in {expression!r}",
                          "grader.calculate_output") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in names and node.id not in FUNCTIONS:
            raise GraderError(f"calculate_output uses {node.id!r}, which is neither a grader of this multi grader "
                              f"({', '.join(sorted(names))}) nor a function ({', '.join(FUNCTIONS)})",
                              "grader.calculate_output")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            raise GraderError(f"calculate_output may call only {', '.join(FUNCTIONS)}", "grader.calculate_output")
        if not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load,
                                 *OPERATORS)) or (isinstance(node, ast.Constant) and not isinstance(node.value, (int, float))):
            raise GraderError(f"calculate_output may hold only numbers, grader names and arithmetic, not "
                              f"{ast.unparse(node) if not isinstance(node, ast.operator) else type(node).__name__}",
                              "grader.calculate_output")
    return tree


def evaluate_formula(tree: ast.Expression, values: dict[str, float]) -> float:
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.BinOp):
            return OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp):
            return OPERATORS[type(node.op)](walk(node.operand))
        return FUNCTIONS[node.func.id](*(walk(a) for a in node.args))
    return float(walk(tree))


# -- validation -------------------------------------------------------------------------------
REQUIRED = {"string_check": ("name", "input", "reference", "operation"),
            "text_similarity": ("name", "input", "reference", "evaluation_metric"),
            "python": ("name", "source"), "score_model": ("name", "input", "model"),
            "multi": ("name", "graders", "calculate_output")}


def validate(grader: dict, param: str = "grader", models: Callable[[str], bool] | None = None) -> dict:
    """The grader as the providers store it, or GraderError naming the first bad field. `models`
    says whether a score_model grader's model exists (any name when None)."""
    if not isinstance(grader, dict):
        raise GraderError("a grader is a JSON object with a type", param)
    kind = grader.get("type")
    if kind not in TYPES:
        raise GraderError(f"type must be one of {', '.join(TYPES)}, not {kind!r}", f"{param}.type")
    for key in REQUIRED[kind]:
        if grader.get(key) in (None, "", [], {}):
            raise GraderError(f"a {kind} grader needs {key!r}", f"{param}.{key}")
    for key, value in grader.items():
        if isinstance(value, str):
            for match in TEMPLATE.finditer(value):
                if not VARIABLE.fullmatch(match.group(1)):
                    raise GraderError(f"{{{{ {match.group(1)} }}}} is not a variable: templates read item.<field> or "
                                      f"sample.<field>", f"{param}.{key}")
    if kind == "string_check" and grader["operation"] not in OPERATIONS:
        raise GraderError(f"operation must be one of {', '.join(OPERATIONS)}, not {grader['operation']!r}",
                          f"{param}.operation")
    if kind == "text_similarity" and grader["evaluation_metric"] not in METRICS:
        raise GraderError(f"evaluation_metric must be one of {', '.join(METRICS)}, not {grader['evaluation_metric']!r}",
                          f"{param}.evaluation_metric")
    if kind == "python":
        try:
            sandbox.check_source(grader["source"])
        except ValueError as err:
            raise GraderError(str(err), f"{param}.source") from None
    if kind == "score_model":
        if not isinstance(grader["input"], list) or not all(isinstance(m, dict) and "role" in m and "content" in m
                                                             for m in grader["input"]):
            raise GraderError("input is a list of messages, each with a role and content", f"{param}.input")
        low, high = grader.get("range") or [0, 1]
        if not low < high:
            raise GraderError(f"range must be two numbers, the lower first, not {grader.get('range')}", f"{param}.range")
        if models is not None and not models(grader["model"]):
            raise GraderError(f"The model {grader['model']!r} does not exist or you do not have access to it",
                              f"{param}.model")
    if kind == "multi":
        graders = grader["graders"]
        if isinstance(graders, dict) and "type" in graders:  # one grader, named by its name
            graders = {graders.get("name", "grader"): graders}
        if not isinstance(graders, dict):
            raise GraderError("graders maps names to graders", f"{param}.graders")
        for name, inner in graders.items():
            if isinstance(inner, dict) and inner.get("type") == "multi":
                raise GraderError("a multi grader's graders cannot be multi graders", f"{param}.graders.{name}")
            validate(inner, f"{param}.graders.{name}", models)
        formula(grader["calculate_output"], set(graders))
    return grader


# -- running ----------------------------------------------------------------------------------
def _flags(**set_flags) -> dict:
    errors = {flag: False for flag in ERROR_FLAGS}
    errors.update({"model_grader_server_error_details": None, "python_grader_runtime_error_details": None,
                   "python_grader_server_error_type": None})
    errors.update(set_flags)
    return errors


def run(grader: dict, model_sample: str, item: dict | None = None, score_with: Callable | None = None,
        limits: sandbox.Limits = sandbox.DEFAULT) -> dict:
    """Grade one sample: the run endpoint's response. `score_with(model, messages, sampling_params)`
    answers a score_model grader's messages (the emulator's chat models) with (reply, (prompt tokens,
    completion tokens))."""
    return run_many(grader, [(model_sample, item)], score_with, limits)[0]


def run_many(grader: dict, samples: list[tuple[str, dict | None]], score_with: Callable | None = None,
             limits: sandbox.Limits = sandbox.DEFAULT) -> list[dict]:
    """`run` for many (model_sample, item) pairs; a python grader grades them all in one process."""
    start = time.perf_counter()
    scopes = [namespaces(text, item) for text, item in samples]
    outcomes = _grade(grader, scopes, score_with, limits)
    seconds = (time.perf_counter() - start) / max(len(samples), 1)
    responses = []
    for outcome in outcomes:
        score, errors, subs, usage = outcome
        tokens = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage),
                  "cached_tokens": 0} if usage else None
        model = grader.get("model") if grader.get("type") == "score_model" else None
        responses.append({
            "reward": score,
            "metadata": {"name": grader.get("name", ""), "type": grader.get("type", ""), "errors": _flags(**errors),
                         "execution_time": round(seconds, 4), "scores": subs, "token_usage": tokens,
                         "sampled_model_name": model},
            "sub_rewards": subs,
            "model_grader_token_usage_per_model": {model: tokens} if model and tokens else {},
        })
    return responses


def _grade(grader: dict, scopes: list[dict], score_with, limits) -> list[tuple[float, dict, dict, tuple | None]]:
    """(score, error flags set, sub-rewards, (prompt, completion) tokens of a model grader or None) per scope."""
    kind = grader["type"]
    if kind == "python":
        pairs = [(scope["sample"], scope["item"]) for scope in scopes]
        results = sandbox.grade(grader["source"], pairs, limits)
        out = []
        for result in results:
            flags = {}
            if result.error:
                flags[SANDBOX_ERRORS[result.error]] = True
                detail_key = ("python_grader_server_error_type" if result.error == "server"
                              else "python_grader_runtime_error_details")
                flags[detail_key] = result.details
            out.append((result.score, flags, {}, None))
        return out
    if kind == "multi":
        graders = grader["graders"] if "type" not in grader["graders"] else {grader["graders"]["name"]: grader["graders"]}
        tree = formula(grader["calculate_output"], set(graders))
        parts = {name: _grade(inner, scopes, score_with, limits) for name, inner in graders.items()}
        out = []
        for i in range(len(scopes)):
            subs = {name: results[i][0] for name, results in parts.items()}
            flags = {k: v for results in parts.values() for k, v in results[i][1].items()}
            usage = tuple(map(sum, zip(*(results[i][3] or (0, 0) for results in parts.values()), strict=True)))
            try:
                score = evaluate_formula(tree, subs)
            except (ArithmeticError, ValueError) as err:
                flags["formula_parse_error"] = True
                flags.setdefault("other_error", False)
                score = 0.0
                subs["calculate_output error"] = str(err)
            out.append((score, flags, subs, usage))
        return out
    return [_grade_one(grader, scope, score_with) for scope in scopes]


def _grade_one(grader: dict, scope: dict, score_with) -> tuple[float, dict, dict, tuple | None]:
    kind = grader["type"]
    try:
        if kind == "string_check":
            text, reference = render(grader["input"], scope), render(grader["reference"], scope)
            same = {"eq": text == reference, "ne": text != reference, "like": reference in text,
                    "ilike": reference.lower() in text.lower()}[grader["operation"]]
            return float(same), {}, {}, None
        if kind == "text_similarity":
            text, reference = render(grader["input"], scope), render(grader["reference"], scope)
            return round(SIMILARITY[grader["evaluation_metric"]](text, reference), 6), {}, {}, None
        messages = [{"role": m["role"], "content": render(m["content"], scope) if isinstance(m["content"], str)
                     else m["content"]} for m in grader["input"]]
    except VariableError:
        return 0.0, {"invalid_variable_error": True}, {}, None
    if score_with is None:
        return 0.0, {"model_grader_server_error": True,
                     "model_grader_server_error_details": "no model to score with"}, {}, None
    reply, tokens = score_with(grader["model"], messages, grader.get("sampling_params") or {})
    low, high = grader.get("range") or [0, 1]
    try:  # the providers ask the grader model for {"result": <score>, "steps": [...]}; a bare number is read too
        found = json.loads(reply)["result"]
    except (TypeError, ValueError, KeyError):
        number = re.search(r"-?\d+(?:\.\d+)?", reply or "")
        found = number.group() if number else None
    try:
        score = float(found)
    except (TypeError, ValueError):
        return 0.0, {"model_grader_parse_error": True}, {}, tokens
    return min(max(score, low), high), {}, {}, tokens


# -- the course's SQL reward as a provider's python grader ------------------------------------
SQL_GRADER = '''
import re
import sqlite3
from collections import Counter

FENCE = re.compile(r"```(?:sql|sqlite)?\\s*(.*?)(?:```|$)", re.S | re.I)
QUOTED = re.compile(r"('(?:[^']|'')*')")


def extract_sql(text):
    match = FENCE.search(text)
    return (match.group(1) if match else text).split(";")[0].strip()


def run(database, query):
    con = sqlite3.connect(":memory:")
    con.executescript(database)
    steps = iter(range(2000))
    con.set_progress_handler(lambda: next(steps, None) is None, 1000)  # a runaway query stops
    try:
        return [tuple(round(v, 4) if isinstance(v, float) else v for v in row) for row in con.execute(query).fetchall()]
    finally:
        con.close()


def ordered(query):
    parts = QUOTED.split(" ".join(query.split()))
    return "order by" in "".join(p if p.startswith("'") else p.lower() for p in parts)


def grade(sample, item):
    """0.9 when the reply's SQL returns the gold query's rows, plus 0.1 when it runs at all."""
    database = DATABASES[item["db_id"]]
    expected = run(database, item["gold_sql"])
    try:
        got = run(database, extract_sql(sample["output_text"]))
    except (sqlite3.Error, sqlite3.Warning, ValueError):
        return 0.0
    same = got == expected if ordered(item["gold_sql"]) else Counter(got) == Counter(expected)
    return 0.9 * same + 0.1
'''


def sql_grader(db_dir=None, name: str = "sql_execution") -> dict:
    """The course's SQL reward (notebook 08's: 0.9 for the gold rows, 0.1 for SQL that runs) as a python
    grader a provider can run: self-contained, the databases written into its source as SQL, each line's
    `db_id` and `gold_sql` read from the item."""
    import sqlite3
    from pathlib import Path

    from helpers.eval.sql import DB_DIR

    dumps = {}
    for path in sorted(Path(db_dir or DB_DIR).glob("*.sqlite")):
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dumps[path.stem] = "\n".join(con.iterdump())
        con.close()
    return {"type": "python", "name": name, "source": SQL_GRADER.lstrip() + f"\n\nDATABASES = {dumps!r}\n"}


def reward_function(grader: dict, item_column: str = "item", score_with: Callable | None = None,
                    limits: sandbox.Limits = sandbox.DEFAULT, on_results: Callable | None = None) -> Callable:
    """The grader as a reward function for TRL's GRPOTrainer: each completion is the sample, and the row's
    `item_column` (the dataset line without its messages, as JSON text) is the item. `on_results` sees each
    batch's run responses, errors included."""
    def reward(completions, **row_columns):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        items = [json.loads(item) if isinstance(item, str) else item for item in row_columns[item_column]]
        results = run_many(grader, list(zip(texts, items, strict=True)), score_with, limits)
        if on_results:
            on_results(results)
        return [r["reward"] for r in results]

    reward.__name__ = grader.get("name") or grader["type"]
    return reward
