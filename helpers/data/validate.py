"""Check a fine-tuning JSONL file the way the provider will, before you upload (and pay for) it.

    python -m helpers.data.validate FILE [--model NAME] [--format chat|preference|reinforcement]
                                         [--provider openai|azure] [--epochs N] [--json]

Every problem names its line, a stable code (chat_format.CODES) and what to do. A bad line never
stops the scan and valid lines are never lost: `Report.write_valid` saves them to a new file.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data import cost, tokens
from helpers.data.chat_format import CHECKS, CODES, example_messages
from helpers.providers.conventions import PROVIDERS, get

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
MIN_EXAMPLES, RECOMMENDED_EXAMPLES = 10, 50
MAX_FILE_BYTES = 512 * 1024**2  # the upload limit of the files API
BOM = b"\xef\xbb\xbf"
SHOWN = 20  # problems of one code printed before "... N more"


@dataclass
class Problem:
    line: int | None
    code: str
    message: str


@dataclass
class Report:
    """What `validate_file` found: counts, problems by severity, statistics and the valid lines."""
    path: str
    model: str
    format: str = "chat"
    provider: str = "openai"
    grader_fields: frozenset = frozenset()  # reinforcement: the item fields the grader reads
    examples: int = 0
    valid: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    valid_lines: list[int] = field(default_factory=list)
    example_tokens: list[int] = field(default_factory=list)
    assistant_tokens: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the provider should accept the file (warnings allowed)."""
        return not self.errors

    def add(self, line: int | None, code: str, message: str) -> None:
        """Record a problem as an error or a warning, by its code's severity."""
        target = self.errors if CODES[code][0] == "error" else self.warnings
        target.append(Problem(line, code, message))

    def to_dict(self) -> dict:
        """The JSON form printed by `--json`."""
        return {"file": self.path, "model": self.model, "format": self.format,
                "examples": self.examples, "valid": self.valid,
                "errors": [asdict(p) for p in self.errors],
                "warnings": [asdict(p) for p in self.warnings], "stats": self.stats}

    def problems(self) -> pd.DataFrame:
        """Every error, then every warning, as a table in line order (file-level ones first)."""
        rows = [("error", *asdict(p).values()) for p in self.errors]
        rows += [("warning", *asdict(p).values()) for p in self.warnings]
        frame = pd.DataFrame(rows, columns=["severity", "line", "code", "message"])
        frame["line"] = frame["line"].astype("Int64")
        return frame.sort_values(["severity", "line"], na_position="first", kind="stable").reset_index(drop=True)

    def summary(self) -> pd.Series:
        """The headline figures as a labelled column."""
        s = self.stats
        rows = {
            "examples (valid)": f"{self.examples:,} ({self.valid:,})",
            "errors / warnings": f"{len(self.errors):,} / {len(self.warnings):,}",
            "encoding / limit per example": f"{s.get('encoding')} / "
            + (f"{s['token_limit']:,} tokens" if s.get("token_limit") else "unknown"),
            "examples over the limit": f"{s.get('examples_over_limit', 0):,}",
            "billed tokens per epoch": f"{s.get('billed_tokens_per_epoch', 0):,}",
            "epochs (default)": f"{s.get('epochs', 0)} ({s.get('default_epochs', 0)})",
            "estimated billed tokens": f"{s.get('estimated_billed_tokens', 0):,}",
            "estimated cost": _money(s),
        }
        return pd.Series(rows, name=Path(self.path).name)

    def distributions(self) -> pd.DataFrame:
        """Per-example distributions: messages, all tokens, trained assistant tokens."""
        keys = ["messages_per_example", "tokens_per_example", "assistant_tokens_per_example"]
        return pd.DataFrame({k: self.stats.get(k, {}) for k in keys}).T

    def _repr_html_(self) -> str:
        verdict = "✅ ready to upload" if self.ok else f"❌ {len(self.errors)} error(s) to fix"
        parts = [f"<h4>{html.escape(self.path)}: {verdict}</h4>",
                 self.summary().to_frame().to_html(header=False),
                 self.distributions().to_html()]
        if self.errors or self.warnings:
            parts.append(self.problems().head(100).to_html(index=False, na_rep=""))
        return "\n".join(parts)

    def text(self) -> str:
        """A plain-text report for the terminal: problems as file:line: code: message."""
        lines = [f"{self.path}: {self.examples:,} examples, {self.valid:,} valid, "
                 f"{len(self.errors):,} errors, {len(self.warnings):,} warnings"]
        for title, found in (("errors", self.errors), ("warnings", self.warnings)):
            if found:
                lines.append(f"{title}:")
                lines += _shown(self.path, found)
        summary = self.summary()
        width = max(map(len, summary.index))
        lines += [f"{key:<{width}}  {value}" for key, value in summary.items()]
        lines.append(self.distributions().to_string(float_format=lambda x: f"{x:,.1f}"))
        return "\n".join(lines)

    def write_valid(self, target: str | Path) -> int:
        """Copy the valid lines, byte for byte, to `target`; returns how many were written."""
        keep = set(self.valid_lines)
        with open(self.path, "rb") as src, open(target, "wb") as dst:
            for number, raw in enumerate(src, start=1):
                if number in keep:
                    dst.write(raw.removeprefix(BOM) if number == 1 else raw)
                    if not raw.endswith(b"\n"):
                        dst.write(b"\n")
        return len(keep)


def _money(stats: dict) -> str:
    """The cost estimate as text, with the date its price was checked."""
    if stats.get("estimated_cost_usd") is None:
        return "no price known for this model"
    return (f"~${stats['estimated_cost_usd']:,.2f} at ${stats['price_usd_per_million']:.2f}/1M "
            f"(list price checked {stats['prices_checked']}; an estimate)")


def _shown(path: str, found: list[Problem]) -> list[str]:
    """file:line: code: message lines, at most SHOWN per code."""
    out, per_code = [], {}
    for p in found:
        per_code[p.code] = per_code.get(p.code, 0) + 1
        if per_code[p.code] <= SHOWN:
            out.append(f"  {path}:{p.line or '-'}: {p.code}: {p.message}")
    out += [f"  ... {n - SHOWN:,} more {code} (use --json for all)"
            for code, n in per_code.items() if n > SHOWN]
    return out


def describe(values: list[float]) -> dict:
    """min, max, mean, median and the true 5th and 95th percentiles of some values."""
    if not values:
        return {}
    a = np.asarray(values, dtype=float)
    p5, median, p95 = np.percentile(a, [5, 50, 95])
    return {"min": int(a.min()), "max": int(a.max()), "mean": round(float(a.mean()), 2),
            "median": float(median), "p5": float(p5), "p95": float(p95)}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # strict JSON: no NaN or Infinity


_UNPARSED = object()


def _parse(number: int, raw: bytes, report: Report):
    """The JSON value of one line, or _UNPARSED after recording why it has none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        report.add(number, "not_utf8", f"byte {err.start + 1} ({raw[err.start:err.start + 1]!r}) "
                   "is not UTF-8; save the file as UTF-8")
        return _UNPARSED
    try:
        return _DECODER.decode(text.rstrip("\r\n"))
    except json.JSONDecodeError as err:
        report.add(number, "invalid_json", f"not valid JSON: {err.msg} (column {err.colno})")
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        report.add(number, "invalid_json", f"not valid JSON: {reason}")
    return _UNPARSED


class _Tally:
    """Texts to tokenise and per-example counts, gathered while scanning."""

    def __init__(self):
        self.texts, self.trained, self.starts, self.framing = [], [], [], []
        self.messages, self.no_system, self.no_user = [], 0, 0

    def add(self, row: dict, fmt: str) -> None:
        messages, definitions = example_messages(row, fmt)
        texts, trained, framing = tokens.conversation_texts(messages)
        extra = [json.dumps(definitions[k], ensure_ascii=False)
                 for k in ("tools", "functions") if k in definitions]
        self.starts.append(len(self.texts))
        self.texts += texts + extra
        self.trained += trained + [False] * len(extra)
        self.framing.append(framing)
        self.messages.append(len(messages))
        roles = {m["role"] for m in messages}
        self.no_system += "system" not in roles
        self.no_user += "user" not in roles

    def counts(self, enc) -> tuple[np.ndarray, np.ndarray]:
        """Tokens per example, all and trained-assistant only, from one batched encoding pass."""
        lengths = np.asarray(tokens.token_lengths(self.texts, enc), dtype=np.int64)
        bounds = np.asarray(self.starts + [len(self.texts)])

        def per_example(values):
            cumulative = np.concatenate([[0], np.cumsum(values)])
            return cumulative[bounds[1:]] - cumulative[bounds[:-1]]

        trained = np.where(np.asarray(self.trained, dtype=bool), lengths, 0)
        return per_example(lengths) + np.asarray(self.framing, dtype=np.int64), per_example(trained)


def _check_line(number: int, raw: bytes, report: Report, seen: dict, tally: _Tally) -> None:
    """Validate one non-blank line; a valid example joins the tally."""
    report.examples += 1
    row = _parse(number, raw, report)
    if row is _UNPARSED:
        return
    found = list(CHECKS[report.format](row, report.grader_fields) if report.format == "reinforcement"
                 else CHECKS[report.format](row))
    for code, message in found:
        report.add(number, code, message)
    if any(CODES[code][0] == "error" for code, _ in found):
        return
    key = raw.strip()
    if key in seen:
        report.add(number, "duplicate_example", f"the same example as line {seen[key]}")
    seen.setdefault(key, number)
    report.valid += 1
    report.valid_lines.append(number)
    tally.add(row, report.format)


def _add_token_stats(report: Report, tally: _Tally, epochs: int | None) -> None:
    """Token distributions, over-limit examples and the cost estimate."""
    name = tokens.encoding_name(report.model)
    limit = cost.token_limit(report.model)
    if limit is None or name is None or cost.price_per_million(report.model) is None:
        report.add(None, "unknown_model", f"the course knows no token limit or price for {report.model!r}"
                   + ("" if name else f"; counting with {tokens.FALLBACK_ENCODING}")
                   + f". Known: {', '.join(cost.TOKEN_LIMITS)}")
    enc = tokens.get_encoding(name or tokens.FALLBACK_ENCODING)
    totals, trained = tally.counts(enc) if tally.texts else (np.zeros(0, int), np.zeros(0, int))
    report.example_tokens, report.assistant_tokens = totals.tolist(), trained.tolist()
    over = 0
    for line, n in zip(report.valid_lines, report.example_tokens, strict=False):
        if limit and n > limit:
            over += 1
            report.add(line, "example_too_long", f"{n:,} tokens, over the {limit:,}-token limit of "
                       f"{report.model}: the provider truncates it")
    report.stats.update({
        "encoding": enc.name, "token_limit": limit, "examples_over_limit": over,
        "messages_per_example": describe(tally.messages),
        "tokens_per_example": describe(report.example_tokens),
        "assistant_tokens_per_example": describe(report.assistant_tokens),
        "examples_missing_system": tally.no_system, "examples_missing_user": tally.no_user,
    })
    report.stats.update(cost.estimate(report.example_tokens, report.model, epochs))


def _add_file_checks(report: Report, has_bom: bool) -> None:
    """Checks on the whole file: byte-order mark, example count, missing roles."""
    expects_bom = get(report.provider).expects_bom
    if has_bom and not expects_bom:
        report.add(1, "byte_order_mark", "the file starts with a UTF-8 byte-order mark; OpenAI expects "
                   "plain UTF-8 (it was skipped here), Azure OpenAI accepts it")
    if not has_bom and expects_bom:
        report.add(None, "missing_byte_order_mark", "Azure OpenAI documents UTF-8 with a byte-order mark; "
                   "save with encoding 'utf-8-sig' if the upload is refused")
    if report.valid < MIN_EXAMPLES:
        report.add(None, "too_few_examples", f"{report.valid} valid example(s); fine-tuning needs at "
                   f"least {MIN_EXAMPLES} (start from {RECOMMENDED_EXAMPLES} or more)")
    elif report.valid < RECOMMENDED_EXAMPLES:
        report.add(None, "few_examples", f"{report.valid} examples; {RECOMMENDED_EXAMPLES} or more "
                   "well-made ones usually give a clear improvement")
    for role, n in (("system", report.stats["examples_missing_system"]),
                    ("user", report.stats["examples_missing_user"])):
        if n:
            report.add(None, f"missing_{role}_message", f"{n:,} example(s) have no {role} message")


def validate_file(path: str | Path, model: str = DEFAULT_MODEL, format: str = "chat",
                  provider: str = "openai", epochs: int | None = None, grader_fields=()) -> Report:
    """Check every line of a JSONL training file; count tokens and estimate the job's cost. A reinforcement
    file is checked against the `item.*` fields its grader reads (`graders.variables(grader)`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give the path of a .jsonl training file")
    if format not in CHECKS:
        raise ValueError(f"format={format!r}; use one of {', '.join(CHECKS)}")
    get(provider)  # a CourseError naming the known providers
    report = Report(str(path), model, format, provider, frozenset(grader_fields))
    size = path.stat().st_size
    report.stats["file_bytes"] = size
    if size > MAX_FILE_BYTES:
        report.add(None, "file_too_large", f"{size / 1024**2:,.0f} MB; the upload limit is "
                   f"{MAX_FILE_BYTES // 1024**2} MB: split the file")
    seen, tally, has_bom = {}, _Tally(), False
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(BOM):
                has_bom, raw = True, raw[len(BOM):]
            if raw.strip():
                _check_line(number, raw, report, seen, tally)
            else:
                report.add(number, "empty_line", "a blank line, skipped here; delete it, as upload checks may refuse it")
    _add_token_stats(report, tally, epochs)
    _add_file_checks(report, has_bom)
    report.errors.sort(key=lambda p: p.line or 0)
    report.warnings.sort(key=lambda p: p.line or 0)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: print the report; exit 0 only when there is no error."""
    parser = argparse.ArgumentParser(prog="python -m helpers.data.validate", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="the JSONL training (or validation) file")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"base model (default {DEFAULT_MODEL})")
    parser.add_argument("--format", default="chat", choices=list(CHECKS),
                        help="supervised chat, preference (DPO) or reinforcement (RFT)")
    parser.add_argument("--provider", default="openai", choices=list(PROVIDERS))
    parser.add_argument("--epochs", type=int, help="epochs of the job (default: the provider's rule)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--write-valid", metavar="OUT", help="also save the valid lines to OUT")
    args = parser.parse_args(argv)
    try:
        report = validate_file(args.file, args.model, args.format, args.provider, args.epochs)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json else report.text())
    if args.write_valid:
        n = report.write_valid(args.write_valid)
        print(f"wrote {n:,} valid example(s) to {args.write_valid}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
