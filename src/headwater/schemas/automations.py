"""Automations on the wire: a trigger, and the actions to take when it fires.

Triggers (the `type` field tells them apart):

- `event`: counts events whose name matches `expect` and whose resource
  matches `match` (and related resources `match_related`). Reactive: fires
  when `threshold` such events arrive within `within` seconds. Proactive:
  fires when fewer than `threshold` arrive within `within` seconds of the
  bucket opening (an `after` event, or the automation's creation). Buckets
  are kept per `for_each` label values; `after` events must be seen in a
  bucket before `expect` events count in it.
- `compound`: fires when `require` ("any", "all" or a number) of its
  triggers fired within `within` seconds.
- `sequence`: fires when its triggers fire in order within `within`.
- `metric`: fires when a metric of the matching flow runs (`duration`,
  `lateness` in seconds, `successes` as a fraction) over the last `range`
  seconds compares to `threshold` by `operator` for `firing_for` seconds;
  resolves when it no longer does.

Actions are listed by `type` too (`run-deployment`, `send-notification`, ...).
Text fields of actions are Jinja templates rendered in a sandbox with the
firing's context (`event`, `events`, `automation`, `flow_run`, `deployment`,
...); see docs/automations.md.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from headwater.schemas._types import Name, Text
from headwater.schemas.common import Paging

#: label -> pattern or list of patterns (see `core/events.py`).
ResourceSpecification = dict[str, str | list[str]]

#: The longest a trigger may watch: one year.
MAX_WITHIN_SECONDS = 366 * 24 * 3600.0


class Posture(enum.StrEnum):
    Reactive = "Reactive"
    Proactive = "Proactive"
    Metric = "Metric"


def _seconds(value: Any) -> Any:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


Seconds = Annotated[float, Field(ge=0, le=MAX_WITHIN_SECONDS, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventTrigger(_Strict):
    type: Literal["event"] = "event"
    match: ResourceSpecification = Field(default_factory=dict)
    match_related: ResourceSpecification | list[ResourceSpecification] = Field(default_factory=dict)
    after: set[str] = Field(default_factory=set)
    expect: set[str] = Field(default_factory=set)
    for_each: set[str] = Field(default_factory=set)
    posture: Literal[Posture.Reactive, Posture.Proactive] = Posture.Reactive
    threshold: int = Field(default=1, ge=1, le=10_000)
    within: Seconds = 0.0

    _within = field_validator("within", mode="before")(_seconds)

    @model_validator(mode="after")
    def _check(self) -> EventTrigger:
        if self.posture == Posture.Proactive and self.within < 1:
            raise ValueError(
                "a Proactive trigger needs `within` (seconds to wait for the expected events), "
                "e.g. within=3600"
            )
        return self


class MetricName(enum.StrEnum):
    duration = "duration"
    lateness = "lateness"
    successes = "successes"


class MetricTriggerQuery(_Strict):
    name: MetricName
    threshold: float = Field(allow_inf_nan=False)
    operator: Literal["<", "<=", ">", ">="]
    range: Seconds = 300.0
    firing_for: Seconds = 300.0

    _range = field_validator("range", "firing_for", mode="before")(_seconds)


class MetricTrigger(_Strict):
    type: Literal["metric"] = "metric"
    match: ResourceSpecification = Field(default_factory=dict)
    match_related: ResourceSpecification | list[ResourceSpecification] = Field(default_factory=dict)
    posture: Literal[Posture.Metric] = Posture.Metric
    metric: MetricTriggerQuery


class CompoundTrigger(_Strict):
    type: Literal["compound"] = "compound"
    triggers: list[TriggerTypes] = Field(min_length=1, max_length=20)
    require: int | Literal["any", "all"] = "all"
    within: Seconds | None = None

    _within = field_validator("within", mode="before")(_seconds)

    @model_validator(mode="after")
    def _check(self) -> CompoundTrigger:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(
                f"require={self.require} must be between 1 and the number of triggers "
                f"({len(self.triggers)}), or 'any' or 'all'"
            )
        return self


class SequenceTrigger(_Strict):
    type: Literal["sequence"] = "sequence"
    triggers: list[TriggerTypes] = Field(min_length=1, max_length=20)
    within: Seconds | None = None

    _within = field_validator("within", mode="before")(_seconds)


def _trigger_type(value: Any) -> str | None:
    # A trigger without `type` is an event trigger (the common case, shorter in YAML).
    if isinstance(value, dict):
        kind = value.get("type", "event")
        return kind if isinstance(kind, str) else None
    return getattr(value, "type", None)


TriggerTypes = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[MetricTrigger, Tag("metric")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")],
    Discriminator(
        _trigger_type,
        custom_error_type="trigger_type",
        custom_error_message="a trigger's `type` must be 'event', 'metric', 'compound' or "
        "'sequence' (leave it out for an event trigger)",
    ),
]
CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()

# -- actions ------------------------------------------------------------------------------

#: Where an action finds its object: named in the action, or inferred from the event.
Source = Literal["selected", "inferred"]


class DoNothing(_Strict):
    type: Literal["do-nothing"] = "do-nothing"


class RunDeployment(_Strict):
    """Create a run of a deployment (`deployment_id`, or `deployment` as "flow/name").

    `parameters` values may be templates: a string value is rendered, and if
    the whole string is one `{{ ... }}` expression its value keeps its type.
    """

    type: Literal["run-deployment"] = "run-deployment"
    source: Source = "selected"
    deployment_id: uuid.UUID | None = None
    deployment: Name | None = None
    parameters: dict[str, Any] | None = None
    job_variables: dict[str, Any] | None = None


class _DeploymentAction(_Strict):
    source: Source = "selected"
    deployment_id: uuid.UUID | None = None
    deployment: Name | None = None


class PauseDeployment(_DeploymentAction):
    type: Literal["pause-deployment"] = "pause-deployment"


class ResumeDeployment(_DeploymentAction):
    type: Literal["resume-deployment"] = "resume-deployment"


class _WorkPoolAction(_Strict):
    source: Source = "selected"
    work_pool_id: uuid.UUID | None = None
    work_pool: Name | None = None


class PauseWorkPool(_WorkPoolAction):
    type: Literal["pause-work-pool"] = "pause-work-pool"


class ResumeWorkPool(_WorkPoolAction):
    type: Literal["resume-work-pool"] = "resume-work-pool"


class _WorkQueueAction(_Strict):
    source: Source = "selected"
    work_queue_id: uuid.UUID | None = None
    work_pool: Name | None = None
    work_queue: Name | None = None


class PauseWorkQueue(_WorkQueueAction):
    type: Literal["pause-work-queue"] = "pause-work-queue"


class ResumeWorkQueue(_WorkQueueAction):
    type: Literal["resume-work-queue"] = "resume-work-queue"


class _AutomationAction(_Strict):
    source: Source = "selected"
    automation_id: uuid.UUID | None = None
    automation: Name | None = None


class PauseAutomation(_AutomationAction):
    type: Literal["pause-automation"] = "pause-automation"


class ResumeAutomation(_AutomationAction):
    type: Literal["resume-automation"] = "resume-automation"


class CancelFlowRun(_Strict):
    """Cancel the flow run the triggering event is about."""

    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class SuspendFlowRun(_Strict):
    type: Literal["suspend-flow-run"] = "suspend-flow-run"


class ResumeFlowRun(_Strict):
    type: Literal["resume-flow-run"] = "resume-flow-run"


class ChangeFlowRunState(_Strict):
    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    state: Literal[
        "SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED"
    ]
    name: Name | None = None
    message: Text | None = None


class SendNotification(_Strict):
    """Send `subject` and `body` (templates) to apprise URLs, given or kept in a secret.

    `url` takes one or more apprise URLs (`slack://...`, `mailto://...`,
    `json://...`); `secret` names a Secret whose value is such a URL (or a list
    of them), which keeps tokens out of the automation.
    """

    type: Literal["send-notification"] = "send-notification"
    url: str | list[str] | None = None
    secret: Name | None = None
    subject: Text = "Headwater automation {{ automation.name }} fired"
    body: Text = "{{ event.event }} on {{ event.resource.id }}"

    @model_validator(mode="after")
    def _check(self) -> SendNotification:
        if (self.url is None) == (self.secret is None):
            raise ValueError(
                "send-notification needs exactly one of `url` (apprise URLs) or `secret` "
                "(the name of a Secret holding them)"
            )
        return self


class CallWebhook(_Strict):
    """An HTTP request to `url`; `payload` (a template) is the body.

    Loopback, link-local, private and cloud metadata addresses are refused
    unless the server allows them (HEADWATER_SERVER_AUTOMATIONS_ALLOWED_HOSTS).
    """

    type: Literal["call-webhook"] = "call-webhook"
    url: Text
    method: Literal["POST", "PUT", "PATCH", "GET", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    payload: Text = "{{ event | tojson }}"
    timeout: float = Field(default=10.0, gt=0, le=60)


ActionTypes = Annotated[
    DoNothing
    | RunDeployment
    | PauseDeployment
    | ResumeDeployment
    | PauseWorkPool
    | ResumeWorkPool
    | PauseWorkQueue
    | ResumeWorkQueue
    | PauseAutomation
    | ResumeAutomation
    | CancelFlowRun
    | SuspendFlowRun
    | ResumeFlowRun
    | ChangeFlowRunState
    | SendNotification
    | CallWebhook,
    Field(discriminator="type"),
]

# -- automations --------------------------------------------------------------------------


class AutomationCore(_Strict):
    name: Name
    description: Text | None = None
    enabled: bool = True
    trigger: TriggerTypes
    actions: list[ActionTypes] = Field(default_factory=list, max_length=50)
    actions_on_trigger: list[ActionTypes] = Field(default_factory=list, max_length=50)
    actions_on_resolve: list[ActionTypes] = Field(default_factory=list, max_length=50)
    tags: list[Name] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _has_actions(self) -> AutomationCore:
        if not (self.actions or self.actions_on_trigger or self.actions_on_resolve):
            raise ValueError(
                "an automation needs at least one action (actions, actions_on_trigger or "
                "actions_on_resolve); use {'type': 'do-nothing'} to only record firings"
            )
        return self


class AutomationCreate(AutomationCore):
    """`POST /api/automations` (and the body of `PUT /api/automations/{id}`)."""


class AutomationUpdate(_Strict):
    """`PATCH /api/automations/{id}`: only `enabled` (pause or resume)."""

    enabled: bool


class Automation(AutomationCore):
    id: uuid.UUID
    created: dt.datetime
    updated: dt.datetime


class AutomationQuery(Paging):
    """Filters of `GET /api/automations` (sorted by name)."""

    name_contains: Annotated[str, Field(max_length=255, pattern=r"^[^\x00]*$")] | None = Field(
        default=None, description="Only names containing this text."
    )
    enabled: bool | None = Field(default=None, description="Only enabled (or paused) ones.")
    tags: list[Name] = Field(default_factory=list, description="Only automations with every tag.")


class FiringAction(BaseModel):
    """One action of a firing, as the executor left it."""

    id: uuid.UUID
    position: int
    type: str
    action: dict[str, Any]
    state: str = Field(description="PENDING, RUNNING, COMPLETED or FAILED.")
    attempts: int
    next_attempt: dt.datetime | None
    result: Any = None
    error: str | None = None
    created: dt.datetime
    updated: dt.datetime


class AutomationFiring(BaseModel):
    """`GET /api/automations/{id}/firings`: when the trigger fired, why, and what was done."""

    id: uuid.UUID
    automation_id: uuid.UUID
    trigger_id: str
    state: Literal["TRIGGERED", "RESOLVED"]
    bucket_key: str
    triggering_event_id: uuid.UUID | None
    occurred: dt.datetime
    context: dict[str, Any]
    actions: list[FiringAction]
