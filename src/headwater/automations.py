"""Automations as code: "when this happens, do that", created from Python (as in
`prefect.automations`).

Example:
    >>> from headwater.automations import Automation, EventTrigger, RunDeployment
    >>> Automation(
    ...     name="signups",
    ...     trigger=EventTrigger(expect={"customer.signup"}, threshold=10, within=60),
    ...     actions=[
    ...         RunDeployment(
    ...             deployment="onboard/default",
    ...             parameters={"emails": "{{ events | map(attribute='payload') "
    ...                         "| map(attribute='email') | list }}"},
    ...         )
    ...     ],
    ... ).create()

An `Automation` is checked when it is built (a bad trigger or action raises a
pydantic ValidationError naming the field). `create`, `update`, `delete`,
`pause` and `resume` speak to the API of the backend in use: the server at
HEADWATER_API_URL, or the embedded store. Each has an async twin (`acreate`,
`aread`, ...). The triggers and actions are importable from here too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any
from urllib.parse import quote

from headwater.client.api import InvalidRequest
from headwater.exceptions import Conflict, ObjectNotFound
from headwater.schemas.automations import (
    AutomationCore,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    CompoundTrigger,
    DoNothing,
    EventTrigger,
    MetricTrigger,
    MetricTriggerQuery,
    PauseAutomation,
    PauseDeployment,
    PauseWorkPool,
    PauseWorkQueue,
    Posture,
    ResumeAutomation,
    ResumeDeployment,
    ResumeFlowRun,
    ResumeWorkPool,
    ResumeWorkQueue,
    RunDeployment,
    SendNotification,
    SequenceTrigger,
    SuspendFlowRun,
)

__all__ = [
    "Automation",
    "AutomationAlreadyExists",
    "AutomationNotFound",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "CompoundTrigger",
    "DoNothing",
    "EventTrigger",
    "InvalidAutomation",
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
]

#: The fields the API takes when creating or replacing an automation.
CORE_FIELDS = frozenset(AutomationCore.model_fields)


class AutomationAlreadyExists(Conflict, ValueError):
    """`create()` of an automation whose name is taken."""


class AutomationNotFound(ObjectNotFound, ValueError):
    """No automation has that id or name."""


class InvalidAutomation(InvalidRequest):
    """The server refused the automation (e.g. an action names a missing deployment)."""


def _client() -> Any:
    from headwater.client.api import get_client

    return get_client()


def _by_name(name: str) -> str:
    return f"/automations/name/{quote(name, safe='')}"


class Automation(AutomationCore):
    """An automation: a trigger, and actions to take when it fires (or resolves).

    Fields: `name`, `description`, `enabled`, `trigger`, `actions`,
    `actions_on_trigger`, `actions_on_resolve`, `tags`; `id`, `created` and
    `updated` are set once it is stored.
    """

    id: uuid.UUID | None = None
    created: dt.datetime | None = None
    updated: dt.datetime | None = None

    def body(self) -> dict[str, Any]:
        """The automation as the API takes it (`AutomationCreate`, JSON)."""
        return self.model_dump(mode="json", include=set(CORE_FIELDS))

    @classmethod
    def _from_api(cls, answer: dict[str, Any]) -> Automation:
        # Fields a newer server adds are not this model's business.
        return cls.model_validate({k: v for k, v in answer.items() if k in cls.model_fields})

    def _refresh(self, answer: dict[str, Any]) -> None:
        stored = self._from_api(answer)
        for field in type(self).model_fields:
            setattr(self, field, getattr(stored, field))

    def create(self) -> Automation:
        """Store this automation; it starts watching at once (if `enabled`).

        Returns:
            self, with `id`, `created` and `updated` set.

        Raises:
            AutomationAlreadyExists: the name is taken (a Conflict and ValueError).
            InvalidAutomation: the server refused it; the message names the field.
        """
        try:
            answer = _client().request("POST", "/automations", json=self.body())
        except Conflict:
            raise AutomationAlreadyExists(
                f"Automation {self.name!r} already exists: choose another name, or replace it "
                f"with Automation.read(name={self.name!r}) then .update(), or with "
                "`headwater automation apply FILE`."
            ) from None
        except InvalidRequest as exc:
            raise InvalidAutomation(f"Cannot create automation {self.name!r}: {exc}") from None
        self._refresh(answer)
        return self

    def update(self) -> Automation:
        """Replace the stored automation (found by `id`, else by name) with this one.

        Raises:
            AutomationNotFound: it was never created, or was deleted.
            AutomationAlreadyExists: it was renamed to a name another automation has.
            InvalidAutomation: the server refused it.
        """
        automation_id = self.id or self._stored_id()
        try:
            answer = _client().request("PUT", f"/automations/{automation_id}", json=self.body())
        except ObjectNotFound:
            raise AutomationNotFound(
                f"Automation {self.name!r} ({automation_id}) does not exist; create() it."
            ) from None
        except Conflict:
            raise AutomationAlreadyExists(
                f"Cannot rename automation {automation_id} to {self.name!r}: another "
                "automation has that name."
            ) from None
        except InvalidRequest as exc:
            raise InvalidAutomation(f"Cannot update automation {self.name!r}: {exc}") from None
        self._refresh(answer)
        return self

    def delete(self) -> bool:
        """Delete the automation; whether it existed."""
        try:
            automation_id = self.id or self._stored_id()
            _client().request("DELETE", f"/automations/{automation_id}")
        except ObjectNotFound:
            return False
        return True

    def pause(self) -> bool:
        """Stop the automation from firing until `resume()`; True once done."""
        self._set_enabled(False)
        return True

    def resume(self) -> bool:
        """Let a paused automation fire again; True once done."""
        self._set_enabled(True)
        return True

    disable = pause
    enable = resume

    def _set_enabled(self, enabled: bool) -> None:
        automation_id = self.id or self._stored_id()
        try:
            answer = _client().request(
                "PATCH", f"/automations/{automation_id}", json={"enabled": enabled}
            )
        except ObjectNotFound:
            raise AutomationNotFound(
                f"Automation {self.name!r} ({automation_id}) does not exist; create() it."
            ) from None
        if isinstance(answer, dict) and "trigger" in answer:
            self._refresh(answer)
        else:  # a 204: the change is all there is to know
            self.enabled = enabled

    def _stored_id(self) -> uuid.UUID:
        try:
            answer = _client().request("GET", _by_name(self.name))
        except ObjectNotFound:
            raise AutomationNotFound(
                f"Automation {self.name!r} does not exist; create() it first."
            ) from None
        return uuid.UUID(str(answer["id"]))

    @classmethod
    def read(cls, id: uuid.UUID | str | None = None, name: str | None = None) -> Automation:
        """The stored automation with this `id`, or this `name` (give one of them).

        Raises:
            AutomationNotFound: there is none (an ObjectNotFound and ValueError).
        """
        if (id is None) == (name is None):
            raise TypeError("Automation.read() takes id=... or name=..., one of them.")
        if id is not None:
            try:
                path = f"/automations/{uuid.UUID(str(id))}"
            except ValueError:
                raise AutomationNotFound(
                    f"{id!r} is not an automation id (a UUID); to find one by name, use "
                    f"Automation.read(name={str(id)!r})."
                ) from None
            what = f"with id {id}"
        else:
            path, what = _by_name(str(name)), f"named {name!r}"
        try:
            answer = _client().request("GET", path)
        except ObjectNotFound:
            raise AutomationNotFound(
                f"No automation {what}; `headwater automation ls` lists them."
            ) from None
        return cls._from_api(answer)

    # -- async twins: the request runs in a worker thread -------------------------------

    async def acreate(self) -> Automation:
        """`create`, for async code."""
        return await asyncio.to_thread(self.create)

    async def aupdate(self) -> Automation:
        """`update`, for async code."""
        return await asyncio.to_thread(self.update)

    async def adelete(self) -> bool:
        """`delete`, for async code."""
        return await asyncio.to_thread(self.delete)

    async def apause(self) -> bool:
        """`pause`, for async code."""
        return await asyncio.to_thread(self.pause)

    async def aresume(self) -> bool:
        """`resume`, for async code."""
        return await asyncio.to_thread(self.resume)

    adisable = apause
    aenable = aresume

    @classmethod
    async def aread(cls, id: uuid.UUID | str | None = None, name: str | None = None) -> Automation:
        """`read`, for async code."""
        return await asyncio.to_thread(cls.read, id, name)
