"""Events: `emit_event` from any code, the event model, and the triggers and actions
automations are made of (as in `prefect.events`).

    from headwater.events import emit_event

    emit_event("customer.signup", resource={"headwater.resource.id": "customer.42"},
               payload={"email": "a@example.com"})

Names load lazily: importing this package costs nothing until one is used.
"""

from __future__ import annotations

from typing import Any

_AUTOMATIONS = (
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "CompoundTrigger",
    "DoNothing",
    "EventTrigger",
    "MetricTrigger",
    "MetricTriggerQuery",
    "PauseAutomation",
    "PauseDeployment",
    "PauseWorkPool",
    "PauseWorkQueue",
    "Posture",
    "ResumeAutomation",
    "ResumeDeployment",
    "ResumeFlowRun",
    "ResumeWorkPool",
    "ResumeWorkQueue",
    "RunDeployment",
    "SendNotification",
    "SequenceTrigger",
    "SuspendFlowRun",
)

_LAZY: dict[str, str] = {
    "emit_event": "headwater.events.emit",
    "Event": "headwater.schemas.events",
    "Resource": "headwater.schemas.events",
    "RelatedResource": "headwater.schemas.events",
    "sensor": "headwater.sensors",
    "Sensor": "headwater.sensors",
    **dict.fromkeys(_AUTOMATIONS, "headwater.schemas.automations"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'headwater.events' has no attribute {name!r}")
    import importlib

    attribute = "Resource" if name == "RelatedResource" else name
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value
