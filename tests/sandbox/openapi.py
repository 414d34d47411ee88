"""Validate HTTP responses against an OpenAPI document (3.0 or 3.1, JSON or YAML).

Usage::

    validator = OpenApiValidator(hetzner_spec())   # skips the test when the spec is absent
    session.hooks["response"].append(validator.requests_hook)   # every response is checked
    validator.validate("GET", "/v1/servers/1", 200, body)        # or by hand

`validate` finds the path template (literal segments beat `{params}`) and the method under
the spec's base path (the path of `servers[0].url`, e.g. `/v1` or `/api/v2`), picks the
response by exact status, then `4XX`/`4xx`, then `default`, and checks the JSON body with the
matching jsonschema dialect (OpenAPI 3.0 `nullable` is understood). A mismatch raises
`SpecMismatch` and is also kept in `failures`, so a test fails even when a client swallowed the
exception. `validated` counts checked bodies; `skipped` counts responses the spec does not
describe (unknown path, or no JSON schema for that status).

The vendors' specs are their text, so the repository does not carry them: `AURA_SPECS_DIR`
names the folder that holds them (README, "Vendor specs"). Without it, a test whose subject is
the spec itself is reported as skipped with a reason naming the variable, never as passed; the
sandbox's behaviour tests still run, and their responses are counted as *not validated* in the
terminal summary instead of being checked. With the variable set, a missing file is an error.
"""

from __future__ import annotations

import collections
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

SPECS_ENV = "AURA_SPECS_DIR"
HETZNER_SPEC_FILE = "hetzner-cloud-openapi.json"
TAILSCALE_SPEC_FILE = "tailscale-api-openapi.yaml"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_URI = "urn:aura:openapi-spec"


def optional_spec(file_name: str) -> Path | None:
    """The vendor spec `file_name` in `$AURA_SPECS_DIR`, or None when the variable is unset."""
    folder = os.environ.get(SPECS_ENV, "").strip()
    if not folder:
        return None
    path = Path(folder) / file_name
    if not path.is_file():
        raise FileNotFoundError(f"{SPECS_ENV}={folder} has no {file_name} (README: Vendor specs)")
    return path


def spec_path(file_name: str) -> Path:
    """The vendor spec `file_name`; skips the calling test, naming the variable, when unset."""
    path = optional_spec(file_name)
    if path is None:
        pytest.skip(f"not run: needs the vendor spec {file_name}; set {SPECS_ENV} (README)")
    return path


def hetzner_spec() -> Path:
    return spec_path(HETZNER_SPEC_FILE)


def tailscale_spec() -> Path:
    return spec_path(TAILSCALE_SPEC_FILE)


class SpecMismatch(AssertionError):
    """A response body does not match the schema the spec gives for it."""


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class OpenApiValidator:
    """Checks bodies against one spec; built with `spec_path=None` it checks nothing and counts
    every body it was shown in `unchecked`, so a run without the specs says what it missed."""

    def __init__(self, spec_path: Path | None) -> None:
        self.available = spec_path is not None
        self.unchecked = 0
        if spec_path is None:
            spec_path = Path("absent.json")
            text = '{"paths": {}}'
        else:
            text = spec_path.read_text()
        self.spec: dict[str, Any] = (
            json.loads(text) if spec_path.suffix == ".json" else yaml.safe_load(text)
        )
        self.name = spec_path.name
        self.spec_path = spec_path
        version = str(self.spec.get("openapi", "3.0"))
        self._oas31 = version.startswith("3.1")
        servers = self.spec.get("servers") or [{"url": ""}]
        self.base_path = urlsplit(servers[0]["url"]).path.rstrip("/")
        dialect = DRAFT202012 if self._oas31 else DRAFT4
        self._registry: Registry[Any] = Registry().with_resource(
            _URI, Resource.from_contents(self.spec, default_specification=dialect)
        )
        self._routes = self._compile_routes()
        self.validated = 0
        self.skipped = 0
        self.per_operation: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []

    def _compile_routes(self) -> list[tuple[re.Pattern[str], str]]:
        routes = []
        for template in self.spec.get("paths", {}):
            regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            routes.append((literal, re.compile(f"^{regex}/?$"), template))
        routes.sort(key=lambda r: -r[0])
        return [(regex, template) for _, regex, template in routes]

    def template_for(self, path: str) -> str | None:
        """The spec path template for a concrete request path (with the base path)."""
        if not path.startswith(self.base_path):
            return None
        relative = path[len(self.base_path) :] or "/"
        for regex, template in self._routes:
            if regex.match(relative):
                return template
        return None

    @cache  # noqa: B019 - one validator per spec lives for the whole session
    def _validator(self, template: str, method: str, status_key: str) -> Any:
        ref = _pointer(
            "paths", template, method, "responses", status_key, "content", "application/json",
            "schema",
        )  # fmt: skip
        cls = OAS31Validator if self._oas31 else OAS30Validator
        return cls({"$ref": f"{_URI}#/{ref}"}, registry=self._registry)

    def _status_key(self, operation: dict[str, Any], status: int) -> str | None:
        responses = operation.get("responses", {})
        for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
            if key in responses:
                response = responses[key]
                if "$ref" in response:
                    response = self._resolve(response["$ref"])
                if "application/json" in (response.get("content") or {}):
                    return key
                return None
        return None

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return dict(node)

    def validate(self, method: str, path: str, status: int, body: Any) -> bool:
        """Check `body`; True if validated, False if the spec does not describe it."""
        if not self.available:
            self.unchecked += 1
            return False
        template = self.template_for(path)
        operation = (
            self.spec["paths"][template].get(method.lower()) if template is not None else None
        )
        key = self._status_key(operation, status) if operation else None
        if template is None or key is None:
            self.skipped += 1
            return False
        # A $ref'd response is dereferenced before pointing into its schema.
        response = operation["responses"][key]  # type: ignore[index]
        if "$ref" in response:
            ref = response["$ref"].removeprefix("#/")
            schema_ref = f"{ref}/content/{_pointer('application/json')}/schema"
            validator = self._ref_validator(schema_ref)
        else:
            validator = self._validator(template, method.lower(), key)
        try:
            validator.validate(body)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            message = (
                f"{self.name}: {method} {path} -> {status} does not match {template} "
                f"[{key}] at '{where}': {exc.message}"
            )
            self.failures.append(message)
            raise SpecMismatch(message) from None
        self.validated += 1
        self.per_operation[f"{method.upper()} {template} {status}"] += 1
        return True

    @cache  # noqa: B019
    def _ref_validator(self, pointer: str) -> Any:
        cls = OAS31Validator if self._oas31 else OAS30Validator
        return cls({"$ref": f"{_URI}#/{pointer}"}, registry=self._registry)

    def requests_hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """A `requests` response hook: validates JSON bodies of responses under the base path."""
        content_type = response.headers.get("Content-Type", "")
        if not response.content or "json" not in content_type:
            return response
        path = urlsplit(response.request.url).path
        self.validate(response.request.method, path, response.status_code, response.json())
        return response
