"""The status API for dashboards (bearer-token authenticated):

- `GET /v1/agents?customer=cus_...`          the customer's Agents;
- `GET /v1/agents/{namespace}/{name}`         one Agent (404 if absent);
- `GET /v1/agents/{namespace}/{name}/history` its Kubernetes Events in the order they happened;
- `GET /v1/agents/{namespace}/{name}/events`  SSE: its phase changes (404 if absent);
- `GET /v1/customers/{customer}/events`       SSE: phase changes of the customer's Agents.

Callers are authenticated by `access` (operator tokens, signed customer-scoped and write
tokens); a customer-scoped token reads only its customer, anything else is a 403.
`GET /v1/fleet/events` streams every Agent's changes, for fleet tokens only. Reads go to the
apiserver; a transient failure there is a 503 with a short message.

Event streams are bounded per token (`limits.max_streams_per_token` open at once; more are a
429) and end after `limits.stream_idle_timeout` seconds without a change, so one dashboard bug
cannot exhaust the bridge. No route takes a request body (`limits.RequestLimits` refuses one).
"""

# No `from __future__ import annotations`: FastAPI must evaluate the annotations of the
# nested route functions, which refer to the local `bearer` dependency.
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from aura.bridge import access
from aura.bridge.access import Principal
from aura.bridge.agents import LABEL_CUSTOMER, Agent, AgentStore
from aura.bridge.config import BridgeConfig
from aura.bridge.errors import BridgeError
from aura.bridge.metrics import Metrics
from aura.bridge.sse import AgentWatcher
from aura.bridge.views import AgentView, EventView, HistoryView
from aura.models import CUSTOMER_ID_PATTERN

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
# Customer ids become label selector values: at most 63 characters.
CUSTOMER_PATTERN = CUSTOMER_ID_PATTERN.replace("{1,250}", "{1,59}")

Namespace = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)]
Name = Annotated[str, Path(pattern=OBJECT_NAME_PATTERN, max_length=253)]
SSE_MEDIA = "text/event-stream"
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The Kubernetes API is unavailable"}
}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token"}
}


class AgentList(BaseModel):
    items: list[AgentView]


class ErrorBody(BaseModel):
    detail: str


class _Stream(StreamingResponse):
    """A streaming response that gives its slot back however it ends, even unstarted."""

    def __init__(self, content: Any, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _sse_response(description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": description, "content": {SSE_MEDIA: {"schema": {"type": "string"}}}},
        **UNAUTHORIZED,
    }


def router(
    config: BridgeConfig, store: AgentStore, watcher: AgentWatcher, metrics: Metrics
) -> APIRouter:
    authorized = access.dependency(config.api_tokens, config.token_keys)
    limits = config.limits
    open_streams: Counter[str] = Counter()  # by `Principal.stream_key`

    Caller = Annotated[Principal, Depends(authorized)]

    api = APIRouter(
        dependencies=[Depends(authorized)],
        tags=["agents"],
        responses={**UNAUTHORIZED, **UNAVAILABLE},
    )

    async def _get(namespace: str, name: str, caller: Principal) -> Agent:
        try:
            agent = await store.get(namespace, name)
        except BridgeError:
            raise HTTPException(503, "kubernetes API unavailable") from None
        if agent is None:
            caller.require_fleet()  # a scoped token learns nothing about other names
            raise HTTPException(404, "no such agent")
        caller.require_customer(AgentView.of(agent.obj).customer_id)
        return agent

    @api.get("/v1/agents", response_model=AgentList, summary="A customer's agents")
    async def list_agents(
        customer: Annotated[str, Query(pattern=CUSTOMER_PATTERN, max_length=63)],
        caller: Caller,
    ) -> AgentList:
        caller.require_customer(customer)
        try:
            agents = await store.select(f"{LABEL_CUSTOMER}={customer}")
        except BridgeError:
            raise HTTPException(503, "kubernetes API unavailable") from None
        views = sorted(
            (v for v in (AgentView.of(a.obj) for a in agents) if v.customer_id == customer),
            key=lambda v: (v.namespace, v.name),
        )
        return AgentList(items=views)

    @api.get(
        "/v1/agents/{namespace}/{name}",
        response_model=AgentView,
        summary="One agent",
        responses={404: {"model": ErrorBody, "description": "No such agent"}},
    )
    async def get_agent(namespace: Namespace, name: Name, caller: Caller) -> AgentView:
        return AgentView.of((await _get(namespace, name, caller)).obj)

    @api.get(
        "/v1/agents/{namespace}/{name}/history",
        response_model=HistoryView,
        summary="An agent's Kubernetes Events, oldest first, in the order they happened",
        responses={404: {"model": ErrorBody, "description": "No such agent"}},
    )
    async def agent_history(namespace: Namespace, name: Name, caller: Caller) -> HistoryView:
        await _get(namespace, name, caller)
        try:
            entries = await store.history(namespace, name)
        except BridgeError:
            raise HTTPException(503, "kubernetes API unavailable") from None
        return HistoryView(namespace=namespace, name=name, items=[EventView.of(e) for e in entries])

    def _stream(caller: Principal, matches: Any) -> StreamingResponse:
        key = caller.stream_key
        cap = limits.max_streams_per_token
        if cap and open_streams[key] >= cap:
            metrics.refuse("too_many_streams")
            raise HTTPException(
                429, f"at most {cap} open event streams per token", headers={"Retry-After": "5"}
            )
        open_streams[key] += 1

        def release() -> None:
            open_streams[key] -= 1
            if not open_streams[key]:
                del open_streams[key]

        async def body() -> Any:
            metrics.sse_clients.inc()
            try:
                async for chunk in watcher.stream(matches, idle_timeout=limits.stream_idle_timeout):
                    yield chunk
            finally:
                metrics.sse_clients.dec()

        return _Stream(
            body(),
            release,
            media_type=SSE_MEDIA,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.get(
        "/v1/agents/{namespace}/{name}/events",
        summary="Server-Sent Events: this agent's phase changes",
        response_class=StreamingResponse,
        responses={
            **_sse_response("An event stream"),
            404: {"description": "No such agent"},
            429: {"description": "Too many open event streams for this token"},
        },
    )
    async def agent_events(namespace: Namespace, name: Name, caller: Caller) -> StreamingResponse:
        await _get(namespace, name, caller)
        return _stream(caller, lambda v: v.namespace == namespace and v.name == name)

    @api.get(
        "/v1/customers/{customer}/events",
        summary="Server-Sent Events: phase changes of a customer's agents",
        response_class=StreamingResponse,
        responses={
            **_sse_response("An event stream"),
            429: {"description": "Too many open event streams for this token"},
        },
    )
    async def customer_events(
        customer: Annotated[str, Path(pattern=CUSTOMER_PATTERN, max_length=63)],
        caller: Caller,
    ) -> StreamingResponse:
        caller.require_customer(customer)
        return _stream(caller, lambda v: v.customer_id == customer)

    @api.get(
        "/v1/fleet/events",
        summary="Server-Sent Events: phase changes of every agent (the fleet page)",
        response_class=StreamingResponse,
        responses={
            **_sse_response("An event stream"),
            403: {"description": "A customer-scoped token"},
            429: {"description": "Too many open event streams for this token"},
        },
    )
    async def fleet_events(caller: Caller) -> StreamingResponse:
        caller.require_fleet()
        return _stream(caller, lambda v: True)

    return api
