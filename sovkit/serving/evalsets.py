"""The local stack's evaluation sets, made offline as the tiny model is: everyday questions in English and Swahili
(the day after a day, the month after a month, the sum of two numbers written in words), each with the one short
answer a model that speaks the language gives. Written with the standard library, byte for byte the same on every
machine, so the stack can name each set by its SHA-256.

    python -m sovkit.serving.evalsets DEST      # writes DEST/<set>.jsonl and prints <set> sha256:<digest>

The random tiny model scores 0 on them: they exist to prove the gate, and a real model to be judged by them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

FOLDER = "evaluation-sets"  # where the bundle puts them, beside the models it makes in the model store

DAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "sw": ["Jumatatu", "Jumanne", "Jumatano", "Alhamisi", "Ijumaa", "Jumamosi", "Jumapili"],
}
MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "sw": ["Januari", "Februari", "Machi", "Aprili", "Mei", "Juni", "Julai", "Agosti", "Septemba", "Oktoba",
           "Novemba", "Desemba"],
}
NUMBERS = {
    "en": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
    "sw": ["moja", "mbili", "tatu", "nne", "tano", "sita", "saba", "nane", "tisa", "kumi"],
}
QUESTIONS = {
    "en": {"day": "Which day of the week comes after {}? Answer with one word.",
           "month": "Which month comes after {}? Answer with one word.",
           "sum": "What is {} plus {}? Answer with digits only."},
    "sw": {"day": "Ni siku gani inayofuata {}? Jibu kwa neno moja.",
           "month": "Ni mwezi gani unaofuata {}? Jibu kwa neno moja.",
           "sum": "{} jumlisha {} ni ngapi? Jibu kwa tarakimu tu."},
}
# Eleven sums of two numbers from one to ten, the same pairs in every language.
SUMS = [(1, 5), (2, 8), (3, 1), (4, 4), (5, 7), (6, 10), (7, 3), (8, 6), (9, 9), (10, 2), (2, 3)]


def items(language: str) -> list[dict[str, str]]:
    """The set's lines: {"prompt", "answer"}, in a fixed order."""
    ask, days, months, numbers = QUESTIONS[language], DAYS[language], MONTHS[language], NUMBERS[language]
    rows = [{"prompt": ask["day"].format(day), "answer": days[(i + 1) % len(days)]} for i, day in enumerate(days)]
    rows += [{"prompt": ask["month"].format(month), "answer": months[(i + 1) % len(months)]}
             for i, month in enumerate(months)]
    rows += [{"prompt": ask["sum"].format(numbers[a - 1].capitalize(), numbers[b - 1]), "answer": str(a + b)}
             for a, b in SUMS]
    return rows


def sets() -> dict[str, tuple[str, bytes]]:
    """{set name: (language, the file's bytes)}."""
    return {f"everyday-{language}": (language, "".join(
        json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in items(language)).encode())
        for language in QUESTIONS}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(dest: Path) -> dict[str, str]:
    """Write every set to dest/<name>.jsonl (dest created; files rewritten) and return {name: sha256:<digest>}."""
    dest.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, (_language, data) in sets().items():
        (dest / f"{name}.jsonl").write_bytes(data)
        made[name] = digest(data)
    return made


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sovkit.serving.evalsets DEST", file=sys.stderr)
        return 2
    for name, value in build(Path(args[0])).items():
        print(name, value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
