"""Generate the Agent CustomResourceDefinition from the pydantic models.

Why by hand: pydantic emits JSON Schema 2020-12 (with `$ref`, `anyOf` for optionals and
`additionalProperties: false`), while Kubernetes wants a *structural* OpenAPI v3 schema with
every reference inlined, no `additionalProperties` next to `properties`, and its own
`x-kubernetes-*` extensions. No maintained library converts one into the other for pydantic
v2, and the conversion is small and fully covered by the tests that compare the committed
YAML with this output and exercise it on a real apiserver.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from aura import models

# Keys of pydantic's JSON Schema that mean the same in a Kubernetes structural schema.
_KEPT_KEYS = frozenset(
    {
        "type",
        "description",
        "default",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "items",
        "properties",
        "required",
        "additionalProperties",
    }
)

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Desired", "type": "string", "jsonPath": ".spec.desiredState"},
    {"name": "Server type", "type": "string", "jsonPath": ".spec.server.type"},
    {"name": "Location", "type": "string", "jsonPath": ".spec.server.location"},
    {"name": "Public IP", "type": "string", "jsonPath": ".status.server.ipv4"},
    {"name": "Tailnet IP", "type": "string", "jsonPath": ".status.tailscale.ipv4"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Reason",
        "type": "string",
        "priority": 1,
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
    },
    {"name": "Message", "type": "string", "priority": 1, "jsonPath": ".status.message"},
]


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        # Optional[X] is `anyOf: [X, null]`; Kubernetes expresses optional by omission.
        choices = [c for c in node["anyOf"] if c.get("type") != "null"]
        if len(choices) != 1:
            raise ValueError(f"cannot express union {node['anyOf']!r} in a structural schema")
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        if outer.get("default", ...) is None:
            del outer["default"]
        return _structural({**choices[0], **outer}, defs)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _KEPT_KEYS:
            continue
        elif key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        elif key == "additionalProperties":
            # Structural schemas forbid it beside `properties`, and `true` means "any value",
            # which Kubernetes spells x-kubernetes-preserve-unknown-fields.
            if isinstance(value, dict) and "properties" not in node:
                out[key] = _structural(value, defs)
        else:
            out[key] = value
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out["type"] = "object"
    return out


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(raw, defs)


def agent_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition for `agents.aura.dev`."""
    spec_schema = _schema_of(models.AgentSpec)
    spec_schema.update(models.wire_default(models.AgentSpec))
    status_schema = _schema_of(models.AgentStatus)
    root = {
        "type": "object",
        "description": "An always-on AI agent: a Hetzner server in a Tailscale tailnet "
        "running the OpenClaw gateway.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{models.PLURAL}.{models.GROUP}"},
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.SINGULAR,
                "shortNames": ["ag"],
                "categories": ["aura"],
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML document committed under `crds/`."""
    header = "# Generated by `aura crd` from operator/aura/models.py. Do not edit by hand.\n"
    body = yaml.safe_dump(agent_crd(), sort_keys=False, width=100, allow_unicode=True)
    return header + body
