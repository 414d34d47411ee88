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
from aura.cost import budget_models

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
    {"name": "Cost MTD", "type": "number", "priority": 1, "jsonPath": ".status.cost.monthToDate"},
    {
        "name": "Projected",
        "type": "number",
        "priority": 1,
        "jsonPath": ".status.cost.projectedMonth",
    },
    {"name": "Margin", "type": "number", "priority": 1, "jsonPath": ".status.cost.margin"},
]

BUDGET_COLUMNS: list[dict[str, Any]] = [
    {"name": "Limit", "type": "number", "jsonPath": ".spec.limit"},
    {"name": "Currency", "type": "string", "jsonPath": ".spec.currency"},
    {"name": "Spend", "type": "number", "jsonPath": ".status.currentSpend"},
    {"name": "Projected", "type": "number", "jsonPath": ".status.projected"},
    {"name": "Blocking", "type": "boolean", "jsonPath": ".status.blocking"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
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
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # JSON Schema 2020-12 gives the bound; OpenAPI v3.0 a flag beside minimum/maximum.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
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


def _crd(
    *,
    kind: str,
    plural: str,
    singular: str,
    short_names: list[str],
    description: str,
    spec_model: type[BaseModel],
    status_model: type[BaseModel],
    columns: list[dict[str, Any]],
    spec_default: bool,
) -> dict[str, Any]:
    spec_schema = _schema_of(spec_model)
    if spec_default:
        spec_schema.update(models.wire_default(spec_model))  # type: ignore[arg-type]
    root = {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": _schema_of(status_model),
        },
    }
    if not spec_default:
        root["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{models.GROUP}"},
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": short_names,
                "categories": ["aura"],
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def agent_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition for `agents.aura.dev`."""
    return _crd(
        kind=models.KIND,
        plural=models.PLURAL,
        singular=models.SINGULAR,
        short_names=["ag"],
        description="An always-on AI agent: a Hetzner server in a Tailscale tailnet "
        "running the OpenClaw gateway.",
        spec_model=models.AgentSpec,
        status_model=models.AgentStatus,
        columns=PRINTER_COLUMNS,
        spec_default=True,
    )


def budget_crd() -> dict[str, Any]:
    """The complete CustomResourceDefinition for `agentbudgets.aura.dev`."""
    return _crd(
        kind=budget_models.BUDGET_KIND,
        plural=budget_models.BUDGET_PLURAL,
        singular=budget_models.BUDGET_SINGULAR,
        short_names=["agb"],
        description="A monthly cost limit for the Agents of a namespace, with thresholds "
        "that notify, hold new servers back or hibernate. It never deletes anything.",
        spec_model=budget_models.AgentBudgetSpec,
        status_model=budget_models.AgentBudgetStatus,
        columns=BUDGET_COLUMNS,
        spec_default=False,
    )


CRDS = {"Agent": agent_crd, "AgentBudget": budget_crd}


def render(kind: str = "Agent") -> str:
    """The CRD of `kind` as the YAML document committed under `crds/`."""
    source = "models.py" if kind == "Agent" else "cost/budget_models.py"
    header = f"# Generated by `aura crd` from operator/aura/{source}. Do not edit by hand.\n"
    body = yaml.safe_dump(CRDS[kind](), sort_keys=False, width=100, allow_unicode=True)
    return header + body
