"""Hetzner label syntax and the full label selector grammar (hetzner.md section 2.7).

`compile_selector("env=prod,tier in (a,b),!legacy")` returns a predicate over a labels dict,
parsed once so listing 1,000 servers costs one dict lookup per term and server. Both `k=v`
(hcloud-go) and `k==v` (CAPH) are accepted. A malformed selector raises `SelectorError`, which
the API turns into `422 invalid_input`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Labels = Mapping[str, str]
Predicate = Callable[[Labels], bool]

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
KEY_RE = re.compile(rf"^(?:(?P<prefix>{_PREFIX})/)?{_NAME}$")
VALUE_RE = re.compile(rf"^(?:{_NAME})?$")

_TERM_RE = re.compile(
    r"""^\s*(?:
        (?P<neg>!)\s*(?P<absent>[^\s=!(),]+)
      | (?P<key>[^\s=!(),]+)\s*(?:
            (?P<op>==|=|!=)\s*(?P<value>[^\s=!(),]*)
          | \s(?P<setop>in|notin)\s*\((?P<set>[^()]*)\)
        )?
    )\s*$""",
    re.VERBOSE,
)


class SelectorError(ValueError):
    """The label selector cannot be parsed."""


def label_errors(labels: object) -> list[str]:
    """Why `labels` is not a valid Hetzner labels object; empty when valid."""
    if not isinstance(labels, dict):
        return ["labels must be an object"]
    errors = []
    for key, value in labels.items():
        if not isinstance(key, str) or not KEY_RE.match(key) or len(key) > 317:
            errors.append(f"label key {key!r} is invalid")
        elif key.startswith("hetzner.cloud/"):
            errors.append(f"label key {key!r} uses the reserved prefix hetzner.cloud/")
        if not isinstance(value, str) or not VALUE_RE.match(value):
            errors.append(f"label value {value!r} of key {key!r} is invalid")
    return errors


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside `( )`."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced parentheses")
        elif char == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    if depth != 0:
        raise SelectorError("unbalanced parentheses")
    terms.append(selector[start:])
    return terms


def _term(text: str) -> Predicate:
    m = _TERM_RE.match(text)
    if not m:
        raise SelectorError(f"invalid label selector term {text.strip()!r}")
    if m["neg"]:
        absent = m["absent"]
        return lambda labels: absent not in labels
    key = m["key"]
    if not KEY_RE.match(key):
        raise SelectorError(f"invalid label key {key!r}")
    if m["op"] in ("=", "=="):
        value = m["value"]
        return lambda labels: labels.get(key) == value
    if m["op"] == "!=":
        value = m["value"]
        # Kubernetes semantics, which Hetzner follows: a missing key satisfies `!=`.
        return lambda labels: labels.get(key) != value
    if m["setop"]:
        values = frozenset(v.strip() for v in m["set"].split(",") if v.strip())
        if not values:
            raise SelectorError(f"empty value set in {text.strip()!r}")
        if m["setop"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels


def compile_selector(selector: str) -> Predicate:
    """A predicate for `selector`; raises SelectorError when it is malformed."""
    if not selector.strip():
        return lambda labels: True
    predicates = tuple(_term(term) for term in _split_terms(selector))
    if len(predicates) == 1:
        return predicates[0]
    return lambda labels: all(p(labels) for p in predicates)
