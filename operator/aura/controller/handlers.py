"""kopf registration only: every handler delegates to `driver` in a line or two.

Change handlers (create, spec update, the retry annotation, resume after a restart) all run
the same level-based pass; the delete handler runs the finalizer cleanup; one timer per
Agent re-checks health and drift. The Operator (clients, caches, config) arrives as `memo`.
"""

from __future__ import annotations

from typing import Any

import kopf

from aura.controller import driver
from aura.controller.naming import RETRY_ANNOTATION
from aura.controller.reconcile.context import Logger
from aura.controller.settings import OperatorConfig
from aura.models import GROUP, PLURAL, VERSION

RESOURCE = (GROUP, VERSION, PLURAL)


def register(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Register every Agent handler on `registry`, with intervals taken from `config`."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A private registry gets none of kopf's default login handlers.
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
            **kwargs
        ) or kopf.login_with_kubeconfig(**kwargs)
        return info

    @kopf.on.create(*RESOURCE, registry=registry)
    @kopf.on.resume(*RESOURCE, registry=registry)
    @kopf.on.update(*RESOURCE, field="spec", registry=registry)
    @kopf.on.field(
        *RESOURCE, field=("metadata", "annotations", RETRY_ANNOTATION), registry=registry
    )
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
