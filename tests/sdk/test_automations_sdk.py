"""`Automation(...)` from Python: create, read, update, pause, resume, delete, on the
embedded store's API (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from headwater.automations import (
    Automation,
    AutomationAlreadyExists,
    AutomationNotFound,
    CompoundTrigger,
    DoNothing,
    EventTrigger,
    InvalidAutomation,
    RunDeployment,
    SendNotification,
)
from headwater.client import api as client_api
from headwater.engine.recorder import close_recorder

from .conftest import Store

EMAILS = "{{ events | map(attribute='payload') | map(attribute='email') | list }}"


def _forget_clients() -> None:
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    _forget_clients()
    yield
    close_recorder()
    _forget_clients()


@pytest.fixture
def onboard(store: Store) -> str:
    """A deployment `onboard/default` (served, no work pool) for actions to name."""
    client_api.get_client().request(
        "POST", "/deployments", json={"name": "default", "flow_name": "onboard"}
    )
    return "onboard/default"


def signups(deployment: str) -> Automation:
    return Automation(
        name="signups",
        description="Onboard customers in batches of 10",
        trigger=EventTrigger(expect={"customer.signup"}, threshold=10, within=60),
        actions=[RunDeployment(deployment=deployment, parameters={"emails": EMAILS})],
        tags=["onboarding"],
    )


def test_create_read_update_pause_resume_delete(onboard: str) -> None:
    created = signups(onboard).create()
    assert isinstance(created.id, uuid.UUID)
    assert created.created is not None and created.enabled is True

    by_name = Automation.read(name="signups")
    by_id = Automation.read(id=created.id)
    assert by_name == by_id
    assert by_name.id == created.id
    assert by_name.trigger == EventTrigger(expect={"customer.signup"}, threshold=10, within=60)
    (action,) = by_name.actions
    assert isinstance(action, RunDeployment)
    assert action.parameters == {"emails": EMAILS}
    assert by_name.tags == ["onboarding"]

    by_name.trigger = EventTrigger(expect={"customer.signup"}, threshold=5, within=120)
    by_name.actions.append(DoNothing())
    by_name.update()
    again = Automation.read(name="signups")
    assert isinstance(again.trigger, EventTrigger)
    assert (again.trigger.threshold, again.trigger.within) == (5, 120)
    assert [a.type for a in again.actions] == ["run-deployment", "do-nothing"]

    assert again.pause() is True
    assert again.enabled is False
    assert Automation.read(id=created.id).enabled is False
    assert again.resume() is True
    assert Automation.read(id=created.id).enabled is True
    again.disable()
    assert Automation.read(name="signups").enabled is False
    again.enable()
    assert Automation.read(name="signups").enabled is True

    assert again.delete() is True
    assert again.delete() is False
    with pytest.raises(AutomationNotFound, match="No automation named 'signups'"):
        Automation.read(name="signups")


def test_update_without_an_id_finds_the_automation_by_name(onboard: str) -> None:
    created = signups(onboard).create()
    edited = signups(onboard)
    edited.description = "Batches of ten"
    assert edited.id is None
    edited.update()
    assert edited.id == created.id
    assert Automation.read(id=created.id).description == "Batches of ten"


def test_a_taken_name_is_a_clear_error(onboard: str) -> None:
    signups(onboard).create()
    with pytest.raises(AutomationAlreadyExists, match=r"'signups' already exists.*\.update\(\)"):
        signups(onboard).create()
    with pytest.raises(ValueError):  # as Prefect, a ValueError too
        signups(onboard).create()


def test_an_action_on_a_missing_deployment_names_the_automation(store: Store) -> None:
    with pytest.raises(InvalidAutomation, match="Cannot create automation 'signups'") as caught:
        signups("onboard/missing").create()
    assert "onboard/missing" in str(caught.value)
    with pytest.raises(AutomationNotFound):
        Automation.read(name="signups")


def test_reading_and_changing_what_does_not_exist(store: Store) -> None:
    missing = uuid.uuid4()
    with pytest.raises(AutomationNotFound, match=f"No automation with id {missing}"):
        Automation.read(id=missing)
    with pytest.raises(AutomationNotFound, match="not an automation id"):
        Automation.read(id="nightly")
    with pytest.raises(TypeError, match="one of them"):
        Automation.read()
    ghost = Automation(name="ghost", trigger=EventTrigger(expect={"x"}), actions=[DoNothing()])
    with pytest.raises(AutomationNotFound, match="'ghost' does not exist; create"):
        ghost.update()
    with pytest.raises(AutomationNotFound, match="'ghost' does not exist"):
        ghost.pause()
    assert ghost.delete() is False


def test_bad_automations_are_refused_before_sending() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least one action"):
        Automation(name="nothing", trigger=EventTrigger(expect={"x"}))
    with pytest.raises(ValidationError, match="exactly one of `url`"):
        SendNotification()
    with pytest.raises(ValidationError, match="require=3"):
        CompoundTrigger(triggers=[EventTrigger(expect={"a"})], require=3)


def test_async_twins(onboard: str) -> None:
    async def main() -> tuple[Automation, bool, bool]:
        created = await signups(onboard).acreate()
        read = await Automation.aread(name="signups")
        paused = await read.apause()
        stored = await Automation.aread(id=created.id)
        assert stored.enabled is False
        await stored.aresume()
        return read, paused, await stored.adelete()

    read, paused, deleted = asyncio.run(main())
    assert read.name == "signups" and paused and deleted
