"""Logging for every Aura process: structured JSON (or plain text for humans), secrets redacted.

`configure_logging()` installs one handler on the root logger. Every record passes through
`RedactingFilter`, which masks anything shaped like a credential Aura handles (Tailscale keys,
Stripe keys and webhook secrets, bearer tokens, Hetzner API tokens given as `token=...`, PEM
private keys) in the message, its arguments and the extra fields. Redaction is the last line
of defence: code must still never log a secret on purpose.

Extra fields passed with `extra={...}` (agent, step, duration, outcome, ...) become top-level
keys of the JSON object.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[REDACTED]"

_SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
    re.compile(r"\btskey-[a-z]+-[A-Za-z0-9_-]{6,}"),
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{8,}"),
    re.compile(r"(?i)\b(?P<keep>(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)\b(?P<keep>(?:auth[_-]?key|token|secret|password|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s\"',}]{6,}"
    ),
]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def redact(text: str) -> str:
    """`text` with every credential-shaped substring replaced by `[REDACTED]`."""
    for pattern in _SECRET_PATTERNS:
        # A named group `keep` is the label before the secret ("token=", "Bearer ").
        text = pattern.sub(lambda m: (m.groupdict().get("keep") or "") + REDACTED, text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return False


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message, arguments, extra fields and exception text.

    Extra fields that are not plain data (frameworks attach their settings objects to records)
    are dropped: they would print as opaque reprs, and a repr may hold anything.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key in _STANDARD_ATTRS:
                continue
            if _is_plain(value):
                setattr(record, key, _scrub(value))
            else:
                delattr(record, key)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _PlainFormatter(logging.Formatter):
    """`time level logger: message key=value ...`, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def configure_logging(*, json_format: bool = True, level: str | int = "INFO") -> None:
    """Send all logs to stderr through one redacting handler (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if json_format:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(_PlainFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_aura", False):
            root.removeHandler(old)
    handler._aura = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
