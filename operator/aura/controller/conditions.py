"""Condition types, their reasons, `set_condition`, and the phase derived from conditions.

Conditions are the API: each records the latest fact about one aspect of an Agent, with a
CamelCase reason, a sentence of message and the generation it was computed for. They are
observations, not memory: no timer runs on a lastTransitionTime and no control flow keys on a
reason of a failed or finished attempt (that memory is in `status.provisioning`,
`status.shutdownRequestedAt` and `status.deletedAt`). The phase is only a summary for
`kubectl get agents`, derived here. Every reason the operator writes, the `StepFailed` reasons
included, is a `Reason` constant below.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aura.models import Condition, ConditionStatus, DesiredState, Phase

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN

SERVER_READY = "ServerReady"
"""The Hetzner server exists and is running (False while queued, booting, off or missing)."""
CONFIGURED = "Configured"
"""cloud-init finished and the configurator brought the server to the configured state."""
TAILNET_JOINED = "TailnetJoined"
"""The server's device is in the tailnet; its ID and IPs are in status.tailscale."""
HEALTHY = "Healthy"
"""The OpenClaw gateway's /readyz answered with a ready JSON body."""
READY = "Ready"
"""Summary: the Agent is what its desiredState asks for. Its reason drives the Failed phase."""

TYPES = (SERVER_READY, CONFIGURED, TAILNET_JOINED, HEALTHY, READY)
REPAIRS_PAUSED = "RepairsPaused"
"""The fleet short-circuit holds this Agent's repair back (healing_fleet.py). Written only
once it has been True; outside TYPES, so it never drives the phase."""


class Reason:
    """CamelCase reasons, grouped by the condition they mostly appear on."""

    # Any condition
    PENDING = "Pending"  # not evaluated yet in this attempt
    ROLLED_BACK = "RolledBack"  # deleted by the rollback of a failed attempt
    # ServerReady
    QUEUED = "Queued"  # waiting for a provisioning slot (--max-concurrent-provisions)
    BUDGET_BLOCKED = "BudgetBlocked"  # an AgentBudget's BlockNew threshold holds creates back
    PROJECT_SERVER_LIMIT = "ProjectServerLimit"  # Hetzner: resource_limit_exceeded
    # spec.runtime.secretRef names a missing Secret, or one without a required key
    WAITING_FOR_RUNTIME_SECRET = "WaitingForRuntimeSecret"  # noqa: S105 (a reason)
    CREATING = "Creating"  # create sent, server initializing
    STARTING = "Starting"  # powered on, booting
    RUNNING = "Running"
    SHUTTING_DOWN = "ShuttingDown"  # ACPI shutdown sent; poweroff follows after a timeout
    POWERED_OFF = "PoweredOff"
    SERVER_MISSING = "ServerMissing"  # the server disappeared behind our back
    REPLACING = "Replacing"  # the repair ladder deleted an unhealthy server; a new one comes
    # RepairsPaused
    FLEET_SHORT_CIRCUIT = "FleetShortCircuit"  # too many Agents failing at once: not theirs
    REPAIRS_RESUMED = "RepairsResumed"
    NO_SERVER = "NoServer"  # stopped or suspended with no server: one is created on start
    WAKING = "Waking"  # being created (or booting) from the hibernation checkpoint
    INVALID_CREDENTIALS = "InvalidCredentials"
    # Configured
    WAITING_FOR_CLOUD_INIT = "WaitingForCloudInit"
    CONFIGURING = "Configuring"
    CONFIGURATION_FAILED = "ConfigurationFailed"
    CONFIGURED_OK = "Configured"
    # TailnetJoined
    WAITING_FOR_DEVICE = "WaitingForDevice"
    JOINED = "Joined"
    # Healthy
    GATEWAY_READY = "GatewayReady"
    GATEWAY_STARTING = "GatewayStarting"  # not yet healthy since this (re)start
    GATEWAY_UNHEALTHY = "GatewayUnhealthy"  # was healthy, now failing: phase Degraded
    # Ready
    READY = "Ready"
    STOPPED = "Stopped"
    SUSPENDED = "Suspended"
    DELETING = "Deleting"
    DELETED = "Deleted"
    CHECKPOINTING = "Checkpointing"  # an AgentCheckpoint holds the Agent (checkpoints/hold.py)
    RESTORING = "Restoring"  # an AgentRestore holds the Agent
    HIBERNATING = "Hibernating"  # checkpoint being taken; the server is deleted after it
    HIBERNATED = "Hibernated"  # no server; the data is in a checkpoint (also on ServerReady)
    HIBERNATION_FAILED = "HibernationFailed"  # the checkpoint failed; server kept, powered off
    PROVISIONING_FAILED = "ProvisioningFailed"  # rolled back; spec change or annotation retries
    RETRYING_AFTER_FAILURE = "RetryingAfterFailure"  # rolled back; retries by itself at a time
    INVALID_SPEC = "InvalidSpec"
    # Why a provisioning attempt failed (`errors.StepFailed.reason`; also the Warning Event)
    SERVER_NEVER_BOOTED = "ServerNeverBooted"
    CLOUD_INIT_TIMEOUT = "CloudInitTimeout"
    DEVICE_NEVER_JOINED = "DeviceNeverJoined"
    PROVISION_DEADLINE_EXCEEDED = "ProvisionDeadlineExceeded"
    RETRY_BUDGET_EXHAUSTED = "RetryBudgetExhausted"


# ServerReady reasons of an Agent that waits before any server exists: phase Queued.
QUEUED_REASONS = frozenset(
    {
        Reason.QUEUED,
        Reason.PENDING,
        Reason.WAITING_FOR_RUNTIME_SECRET,
        Reason.BUDGET_BLOCKED,
        Reason.PROJECT_SERVER_LIMIT,
    }
)
# A Ready reason that means "this attempt is over and failed": phase Failed.
FAILED_REASONS = frozenset(
    {Reason.PROVISIONING_FAILED, Reason.RETRYING_AFTER_FAILURE, Reason.INVALID_SPEC}
)
# A Ready reason that means "held by a checkpoint or restore": its own phase.
HELD_PHASES = {Reason.CHECKPOINTING: Phase.CHECKPOINTING, Reason.RESTORING: Phase.RESTORING}
# A Ready reason of hibernation: its own phase, whatever desiredState (automatic hibernation
# leaves `stopped` or `suspended`). Only `running` leaves it, through Waking.
HIBERNATION_PHASES = {
    Reason.HIBERNATING: Phase.HIBERNATING,
    Reason.HIBERNATED: Phase.HIBERNATED,
    Reason.HIBERNATION_FAILED: Phase.FAILED,
}
# ServerReady reasons that say a server exists and is not (yet) off: stopping takes time.
SERVER_UP_REASONS = frozenset(
    {Reason.RUNNING, Reason.STARTING, Reason.CREATING, Reason.SHUTTING_DOWN}
)


def now() -> datetime:
    """The current time truncated to whole seconds, as Kubernetes stores it."""
    return datetime.now(UTC).replace(microsecond=0)


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    found = get_condition(conditions, type_)
    return found is not None and found.status == TRUE


def reason_of(conditions: list[Condition], type_: str) -> str | None:
    found = get_condition(conditions, type_)
    return found.reason if found is not None else None


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    at: datetime | None = None,
) -> bool:
    """Insert or update one condition in place; returns True if its status flipped.

    `lastTransitionTime` changes only when the status changes, so it tells a reader how long
    a fact has held. The list stays sorted by type so the same facts always serialize to the
    same bytes.
    """
    existing = get_condition(conditions, type_)
    if existing is None:
        conditions.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=at or now(),
                observed_generation=generation,
            )
        )
        conditions.sort(key=lambda c: TYPES.index(c.type) if c.type in TYPES else len(TYPES))
        return True
    flipped = existing.status != status
    if flipped:
        existing.last_transition_time = at or now()
    existing.status = status
    existing.reason = reason
    existing.message = message
    existing.observed_generation = generation
    return flipped


def initialize_conditions(
    conditions: list[Condition], generation: int | None, *, at: datetime | None = None
) -> None:
    """On the first visit every condition is Unknown, so `kubectl describe` shows them all."""
    stamp = at.replace(microsecond=0) if at is not None else None
    for type_ in TYPES:
        if get_condition(conditions, type_) is None:
            set_condition(
                conditions, type_, UNKNOWN, Reason.PENDING, "", generation=generation, at=stamp
            )


def derive_phase(conditions: list[Condition], desired: DesiredState) -> Phase:
    """The one-word summary of `conditions` under `desired`, for printer columns and events."""
    ready_reason = reason_of(conditions, READY)
    if desired == DesiredState.DELETED:
        return Phase.DELETED if ready_reason == Reason.DELETED else Phase.DELETING
    if ready_reason in FAILED_REASONS:
        return Phase.FAILED
    if ready_reason in HELD_PHASES:
        return HELD_PHASES[ready_reason]
    if ready_reason in HIBERNATION_PHASES:
        return HIBERNATION_PHASES[ready_reason]
    server_reason = reason_of(conditions, SERVER_READY)
    if desired == DesiredState.HIBERNATED:
        # Hibernation has not written its reason yet (first pass after the change).
        return Phase.HIBERNATING
    if desired in (DesiredState.STOPPED, DesiredState.SUSPENDED):
        # Stopping only while a server is up: off, never created, rolled back or missing
        # all mean nothing runs, which is what was asked.
        if server_reason in SERVER_UP_REASONS or is_true(conditions, SERVER_READY):
            return Phase.STOPPING
        return Phase.STOPPED if desired == DesiredState.STOPPED else Phase.SUSPENDED
    if not is_true(conditions, SERVER_READY):
        if server_reason in QUEUED_REASONS:
            return Phase.QUEUED
        if server_reason == Reason.WAKING:
            return Phase.WAKING
        # A server configured before is being powered back on, not provisioned again.
        return Phase.STARTING if is_true(conditions, CONFIGURED) else Phase.PROVISIONING
    if not is_true(conditions, CONFIGURED):
        return Phase.CONFIGURING
    if not is_true(conditions, TAILNET_JOINED):
        return Phase.NETWORKING
    if is_true(conditions, HEALTHY):
        return Phase.RUNNING
    if reason_of(conditions, HEALTHY) == Reason.GATEWAY_UNHEALTHY:
        return Phase.DEGRADED
    return Phase.NETWORKING
