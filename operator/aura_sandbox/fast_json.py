"""JSON encoding with pre-encoded fragments spliced in.

`fragment(key)` returns a placeholder string to put in a response dict; `dumps(obj)` encodes
with the standard library and replaces each placeholder by `catalog.FRAGMENTS[key]`. The
placeholder uses private-use code points that never occur in API data.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from aura_sandbox.catalog import FRAGMENTS

_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f'"{_OPEN}([^{_CLOSE}]+){_CLOSE}"')


def fragment(key: str) -> str:
    """A placeholder for the pre-encoded JSON `catalog.FRAGMENTS[key]`."""
    return f"{_OPEN}{key}{_CLOSE}"


def _splice(match: re.Match[str]) -> str:
    return FRAGMENTS[match.group(1)]


def dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return _PLACEHOLDER.sub(_splice, text) if _OPEN in text else text


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json")
