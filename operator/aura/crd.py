"""Generate the Agent CustomResourceDefinition from the pydantic models.

Why by hand: pydantic emits JSON Schema 2020-12 (with `$ref`, `anyOf` for optionals and
`additionalProperties: false`), while Kubernetes wants a *structural* OpenAPI v3 schema with
every reference inlined, no `additionalProperties` next to `properties`, and its own
`x-kubernetes-*` extensions. No maintained library converts one into the other for pydantic
v2, and the conversion is small and fully covered by the tests that compare the committed
YAML with this output and exercise it on a real apiserver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import BaseModel

from aura import checkpoint_models as cm
from aura import image_models as im
from aura import models
from aura import pool_models as pm
from aura.cost import budget_models as bm

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


CHECKPOINT_COLUMNS: list[dict[str, Any]] = [
    {"name": "Agent", "type": "string", "jsonPath": ".spec.agentName"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Ready", "type": "boolean", "jsonPath": ".status.readyToUse"},
    {"name": "Size GB", "type": "number", "jsonPath": ".status.sizeGB"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Error", "type": "string", "jsonPath": ".status.error.message"},
    {"name": "Image", "type": "integer", "priority": 1, "jsonPath": ".status.imageID"},
    {"name": "Policy", "type": "string", "priority": 1, "jsonPath": ".spec.deletionPolicy"},
]
RESTORE_COLUMNS: list[dict[str, Any]] = [
    {"name": "Agent", "type": "string", "jsonPath": ".spec.agentName"},
    {"name": "Checkpoint", "type": "string", "jsonPath": ".spec.checkpointName"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Complete", "type": "boolean", "jsonPath": ".status.complete"},
    {"name": "Restored", "type": "date", "jsonPath": ".status.restoreTime"},
    {"name": "Error", "type": "string", "jsonPath": ".status.error.message"},
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
    names: dict[str, Any],
    description: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    root = {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if "default" not in spec:
        root["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names['plural']}.{models.GROUP}"},
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {**names, "listKind": f"{names['kind']}List", "categories": ["aura"]},
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
    spec_schema = _schema_of(models.AgentSpec)
    spec_schema.update(models.wire_default(models.AgentSpec))
    return _crd(
        names={
            "kind": models.KIND,
            "plural": models.PLURAL,
            "singular": models.SINGULAR,
            "shortNames": ["ag"],
        },
        description="An always-on AI agent: a Hetzner server in a Tailscale tailnet "
        "running the OpenClaw gateway.",
        spec=spec_schema,
        status=_schema_of(models.AgentStatus),
        columns=PRINTER_COLUMNS,
    )


def checkpoint_crd() -> dict[str, Any]:
    """The CustomResourceDefinition for `agentcheckpoints.aura.dev`."""
    return _crd(
        names={
            "kind": cm.CHECKPOINT_KIND,
            "plural": cm.CHECKPOINT_PLURAL,
            "singular": cm.CHECKPOINT_SINGULAR,
            "shortNames": ["ackpt", "checkpoint"],
        },
        description="A checkpoint of an Agent: a Hetzner snapshot image of its server.",
        spec=_schema_of(cm.AgentCheckpointSpec),
        status=_schema_of(cm.AgentCheckpointStatus),
        columns=CHECKPOINT_COLUMNS,
    )


def restore_crd() -> dict[str, Any]:
    """The CustomResourceDefinition for `agentrestores.aura.dev`."""
    return _crd(
        names={
            "kind": cm.RESTORE_KIND,
            "plural": cm.RESTORE_PLURAL,
            "singular": cm.RESTORE_SINGULAR,
            "shortNames": ["arestore"],
        },
        description="Rebuild an Agent's server from one of its checkpoints, in place.",
        spec=_schema_of(cm.AgentRestoreSpec),
        status=_schema_of(cm.AgentRestoreStatus),
        columns=RESTORE_COLUMNS,
    )


def budget_crd() -> dict[str, Any]:
    """The CustomResourceDefinition for `agentbudgets.aura.dev`."""
    return _crd(
        names={
            "kind": bm.BUDGET_KIND,
            "plural": bm.BUDGET_PLURAL,
            "singular": bm.BUDGET_SINGULAR,
            "shortNames": ["agb"],
        },
        description="A monthly cost limit for the Agents of a namespace, with thresholds "
        "that notify, hold new servers back or hibernate. It never deletes anything.",
        spec=_schema_of(bm.AgentBudgetSpec),
        status=_schema_of(bm.AgentBudgetStatus),
        columns=BUDGET_COLUMNS,
    )


IMAGE_COLUMNS: list[dict[str, Any]] = [  # golden images (fleet_images/)
    {"name": "Version", "type": "string", "jsonPath": ".spec.openclawVersion"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Image", "type": "integer", "jsonPath": ".status.currentImageID"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Message", "type": "string", "priority": 1, "jsonPath": ".status.message"},
]


def image_crd() -> dict[str, Any]:
    """The CustomResourceDefinition for `agentimages.aura.dev` (golden images)."""
    return _crd(
        names={
            "kind": im.IMAGE_KIND,
            "plural": im.IMAGE_PLURAL,
            "singular": im.IMAGE_SINGULAR,
            "shortNames": ["agimg"],
        },
        description="Golden images of the agent runtime: a builder Agent provisioned, "
        "health-checked, snapshotted and deleted; matching new Agents boot from the image.",
        spec=_schema_of(im.AgentImageSpec),
        status=_schema_of(im.AgentImageStatus),
        columns=IMAGE_COLUMNS,
    )


POOL_COLUMNS: list[dict[str, Any]] = [  # warm pools (pool/)
    {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
    {"name": "Type", "type": "string", "jsonPath": ".spec.serverType"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.ready"},
    {"name": "Target", "type": "integer", "jsonPath": ".status.target"},
    {"name": "Served", "type": "integer", "jsonPath": ".status.served"},
    {"name": "Cost/month", "type": "number", "jsonPath": ".status.costPerMonth"},
    {"name": "Capped", "type": "boolean", "priority": 1, "jsonPath": ".status.capped"},
]


def pool_crd() -> dict[str, Any]:
    """The CustomResourceDefinition for `agentpools.aura.dev` (warm pools)."""
    return _crd(
        names={
            "kind": pm.POOL_KIND,
            "plural": pm.POOL_PLURAL,
            "singular": pm.POOL_SINGULAR,
            "shortNames": ["agpool"],
        },
        description="A warm pool of servers booted from a golden image, enrolled in the "
        "tailnet without any customer Secret; a new matching Agent takes one.",
        spec=_schema_of(pm.AgentPoolSpec),
        status=_schema_of(pm.AgentPoolStatus),
        columns=POOL_COLUMNS,
    )


# `aura crd --kind K` -> (generator, the file under crds/ it is committed as)
KINDS: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "agent": (agent_crd, "aura.dev_agents.yaml"),
    "agentcheckpoint": (checkpoint_crd, "aura.dev_agentcheckpoints.yaml"),
    "agentrestore": (restore_crd, "aura.dev_agentrestores.yaml"),
    "agentbudget": (budget_crd, "aura.dev_agentbudgets.yaml"),
    "agentimage": (image_crd, "aura.dev_agentimages.yaml"),
    "agentpool": (pool_crd, "aura.dev_agentpools.yaml"),
}


def render(kind: str = "agent") -> str:
    """The CRD of `kind` as the YAML document committed under `crds/`."""
    generate, _ = KINDS[kind]
    header = "# Generated by `aura crd` from the pydantic models. Do not edit by hand.\n"
    body = yaml.safe_dump(generate(), sort_keys=False, width=100, allow_unicode=True)
    return header + body
