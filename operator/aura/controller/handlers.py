"""kopf registration only: every handler delegates to `driver` in a line or two.

Change handlers (create, spec update, the retry annotation, resume after a restart) all run
the same level-based pass; the delete handler runs the finalizer cleanup; one timer per
Agent re-checks health and drift. An index of Agents by the runtime Secret they wait for and
a watch on Secrets wake an Agent whose Secret appears or changes (reconcile/prerequisites.py):
the operator sets `aura.dev/runtime-secret-version` on it, a change the same pass handles.
The Operator (clients, caches, config) arrives as `memo`.
"""

from __future__ import annotations

from typing import Any

import kopf

from aura.controller import driver
from aura.controller.clients import kube_pool
from aura.controller.naming import RETRY_ANNOTATION, RUNTIME_SECRET_ANNOTATION
from aura.controller.reconcile.context import Logger
from aura.controller.settings import OperatorConfig
from aura.hibernation_models import BUDGET_HOLD
from aura.models import GROUP, PLURAL, VERSION

RESOURCE = (GROUP, VERSION, PLURAL)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Register every Agent handler on `registry`, with intervals taken from `config`."""

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
        # A private registry gets none of kopf's default login handlers.
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
            **kwargs
        ) or kopf.login_with_kubeconfig(**kwargs)
        return None if info is None else kube_pool.bounded_session(info)

    @kopf.on.create(*RESOURCE, registry=registry)
    @kopf.on.resume(*RESOURCE, registry=registry)
    @kopf.on.update(*RESOURCE, field="spec", registry=registry)
    @kopf.on.field(
        *RESOURCE, field=("metadata", "annotations", RETRY_ANNOTATION), registry=registry
    )
    @kopf.on.field(
        *RESOURCE, field=("metadata", "annotations", RUNTIME_SECRET_ANNOTATION), registry=registry
    )
    @kopf.on.field(*RESOURCE, field=("metadata", "annotations", BUDGET_HOLD), registry=registry)
    async def reconcile(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, reason: str, **_: Any
    ) -> None:
        await driver.drive(memo.operator, body, patch, logger, trigger=str(reason))

    @kopf.on.delete(*RESOURCE, registry=registry)
    async def finalize(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await driver.drive(memo.operator, body, patch, logger, trigger="delete", finalizing=True)
        driver.forget(memo.operator, body)

    @kopf.index(*RESOURCE, id="runtime_secrets", registry=registry)
    def runtime_secrets(
        namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
    ) -> dict[tuple[str | None, str], str] | None:
        # Only Agents without a server wait for their Secret; the others need no wake-up.
        secret = ((spec.get("runtime") or {}).get("secretRef") or {}).get("name")
        has_server = bool((status.get("server") or {}).get("id"))
        return {(namespace, secret): name} if secret and not has_server else None

    @kopf.on.event("v1", "secrets", registry=registry)
    async def runtime_secret_changed(
        type: str,
        namespace: str | None,
        name: str,
        body: kopf.Body,
        memo: Any,
        logger: Logger,
        **kwargs: Any,
    ) -> None:
        # Not the initial listing (type None at runtime): resume handles what existed before.
        if namespace and type in ("ADDED", "MODIFIED"):
            index: kopf.Index[tuple[str | None, str], str] = kwargs["runtime_secrets"]
            agents = list(index.get((namespace, name), []))
            await driver.runtime_secret_changed(memo.operator, namespace, body, agents, logger)

    @kopf.timer(
        *RESOURCE,
        interval=config.health_interval,
        initial_delay=config.health_interval,
        registry=registry,
    )
    async def check(
        body: kopf.Body, patch: kopf.Patch, memo: Any, logger: Logger, **_: Any
    ) -> None:
        await driver.drive_timer(memo.operator, body, patch, logger)
