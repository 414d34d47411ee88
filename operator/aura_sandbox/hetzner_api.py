"""Wire-level helpers shared by the Hetzner handlers: errors, bodies, query parameters,
sorting and pagination, exactly as the spec's prose sections describe them.

Handlers raise `ApiError`; the Hetzner middleware renders it as
`{"error": {"code", "message", "details"}}` with the matching HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from aura_sandbox.fast_json import json_response
from aura_sandbox.label_selector import Predicate, SelectorError, compile_selector

T = TypeVar("T")

MAX_PER_PAGE = 50
DEFAULT_PER_PAGE = 25


class ApiError(Exception):
    """An error answer of the Hetzner API."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def invalid_input(field: str, *messages: str) -> ApiError:
    return ApiError(
        422,
        "invalid_input",
        f"invalid input in field '{field}'",
        {"fields": [{"name": field, "messages": list(messages)}]},
    )


def not_found(kind: str) -> ApiError:
    return ApiError(404, "not_found", f"{kind} not found")


def locked(kind: str = "server") -> ApiError:
    return ApiError(423, "locked", f"cannot perform operation because {kind} is locked")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request body as an object; 400 json_error when it is not JSON."""
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "json_error", "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "json_error", "request body must be a JSON object")
    return body


def path_id(request: web.Request, key: str = "id") -> int:
    raw = request.match_info[key]
    try:
        value = int(raw)
    except ValueError:
        raise invalid_input(key, "must be an integer") from None
    if value < 1:
        raise invalid_input(key, "must be a positive integer")
    return value


def by_path_id(request: web.Request, items: Mapping[int, T], kind: str) -> T:
    """The item the path's `id` names; 404 `<kind> not found` when there is none."""
    item = items.get(path_id(request))
    if item is None:
        raise not_found(kind)
    return item


def query_bool(query: MultiMapping[str], name: str) -> bool | None:
    """Booleans arrive as `true`, `false` or Python's `True` (hetzner.md 2.8)."""
    raw = query.get(name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise invalid_input(name, "must be a boolean")


def query_ids(query: MultiMapping[str], name: str = "id") -> list[int]:
    try:
        return [int(v) for v in query.getall(name, [])]
    except ValueError:
        raise invalid_input(name, "must be an integer") from None


def selector(query: MultiMapping[str]) -> Predicate | None:
    raw = query.get("label_selector")
    if raw is None:
        return None
    try:
        return compile_selector(raw)
    except SelectorError as exc:
        raise ApiError(422, "invalid_input", f"label_selector: {exc}") from exc


def sort_items(
    items: list[T], query: MultiMapping[str], keys: dict[str, Callable[[T], Any]]
) -> list[T]:
    """Apply repeated `sort=field[:asc|:desc]`, the first one most significant."""
    sorts = query.getall("sort", [])
    for spec in reversed(sorts):
        field, _, direction = spec.partition(":")
        if field not in keys or direction not in ("", "asc", "desc"):
            raise invalid_input("sort", f"invalid sort value {spec!r}")
        items = sorted(items, key=keys[field], reverse=direction == "desc")
    return items


def _int_param(query: MultiMapping[str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_input(name, "must be an integer") from None
    if value < 1:
        raise invalid_input(name, "must be at least 1")
    return value


def paginate(
    request: web.Request, items: Sequence[T]
) -> tuple[Sequence[T], dict[str, Any], str | None]:
    """Cut one page: returns the page, `meta` and the `Link` header value (or None)."""
    query = request.query
    page = _int_param(query, "page", 1)
    per_page = min(_int_param(query, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    total = len(items)
    last = max(1, -(-total // per_page))
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]
    previous_page = page - 1 if 1 < page <= last + 1 else None
    next_page = page + 1 if page < last else None
    meta = {
        "pagination": {
            "page": page,
            "per_page": per_page,
            "previous_page": previous_page,
            "next_page": next_page,
            "last_page": last,
            "total_entries": total,
        }
    }
    links = []
    base = f"{request.scheme}://{request.host}{request.path}"
    params = [(k, v) for k, v in query.items() if k not in ("page", "per_page")]
    for rel, target in (("prev", previous_page), ("next", next_page), ("last", last)):
        if target is not None:
            qs = urlencode([*params, ("page", str(target)), ("per_page", str(per_page))])
            links.append(f'<{base}?{qs}>; rel="{rel}"')
    return chunk, meta, ", ".join(links) or None


def list_response(
    request: web.Request, key: str, items: Sequence[T], render: Callable[[T], dict[str, Any]]
) -> web.Response:
    chunk, meta, link = paginate(request, items)
    response = json_response({key: [render(item) for item in chunk], "meta": meta})
    if link:
        response.headers["Link"] = link
    return response


def list_filtered(
    request: web.Request,
    key: str,
    items: list[T],
    render: Callable[[T], dict[str, Any]],
    *,
    name: Callable[[T], str | None],
    labels: Callable[[T], dict[str, str]],
    sort_keys: dict[str, Callable[[T], Any]],
) -> web.Response:
    """Keep the items matching the `name` and `label_selector` queries, sort, answer a page."""
    query = request.query
    if "name" in query:
        items = [i for i in items if name(i) == query["name"]]
    match = selector(query)
    if match is not None:
        items = [i for i in items if match(labels(i))]
    return list_response(request, key, sort_items(items, query, sort_keys), render)
