"""Rules for config fields: each says what values it accepts, in words for the error message.

``check(section, rules, prefix)`` raises a ValueError that names the field and what was expected,
so a bad config stops at load, before any work starts. The processes declare their fields with
these rules (``sde_edge.processes.registry``) and ``sde_edge.config`` checks every other section.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    test: Callable[[Any], bool]
    expected: str


def integer(low=None, high=None):
    def test(v):
        return (
            isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low) and (high is None or v <= high)
        )

    bounds = "" if low is None else f" >= {low}" if high is None else f" in [{low}, {high}]"
    return Rule(test, "an integer" + bounds)


def number(low=None, high=None, low_open=False, high_open=False):
    def test(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or (v < high if high_open else v <= high)

    if high is None:
        text = f"a finite number {'>' if low_open else '>='} {low}"
    else:
        text = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return Rule(test, text)


def choice(options):
    return Rule(lambda v: v in options, f"one of {tuple(options)}")


BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
INT_TUPLE = Rule(lambda v: isinstance(v, (tuple, list)) and all(isinstance(i, int) and i >= 1 for i in v),
                 "a tuple of positive integers")


@dataclass(frozen=True)
class Field:
    """A config field a process declares: its default, its rule, and what it means."""

    default: Any
    rule: Rule
    doc: str = ""


def check(config, rules, prefix):
    """Every field of ``rules`` must be present in ``config`` and pass its rule."""
    for name, rule in rules.items():
        if name not in config:
            raise ValueError(f"{prefix}.{name} is missing from the config")
        value = config[name]
        if not rule.test(value):
            raise ValueError(f"{prefix}.{name} must be {rule.expected}, got {value!r}")
