"""`Variable` and `Secret` through the SDK: embedded, against a real server, and the masking
of secret values in the logs of runs."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.server.helpers import running_server

from headwater import flow, get_run_logger, task
from headwater.blocks.system import Secret, SecretAlreadyExists
from headwater.client import api as client_api
from headwater.engine.recorder import close_recorder
from headwater.exceptions import ObjectNotFound
from headwater.logging import run_logger
from headwater.settings import reset_settings
from headwater.variables import Variable, VariableAlreadyExists

from .conftest import Store

VALUE = "tok-8f3a9c2e-very-secret"


def _forget_clients() -> None:
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No secrets read yet, no cached clients, before and after each test."""
    monkeypatch.setattr(run_logger, "_secret_texts", ())
    _forget_clients()
    yield
    close_recorder()
    _forget_clients()


def test_variables_get_set_unset(store: Store) -> None:
    assert Variable.get("batch_size") is None
    assert Variable.get("batch_size", default=100) == 100
    variable = Variable.set("batch_size", 500, tags=["etl"])
    assert (variable.name, variable.value, variable.tags) == ("batch_size", 500, ["etl"])
    assert Variable.get("batch_size", default=100) == 500

    with pytest.raises(VariableAlreadyExists, match=r"'batch_size' already exists.*overwrite=True"):
        Variable.set("batch_size", 1000)
    with pytest.raises(ValueError):  # Prefect raises a ValueError too
        Variable.set("batch_size", 1000)
    Variable.set("batch_size", {"rows": 1000, "columns": ["a", "b"]}, overwrite=True)
    assert Variable.get("batch_size") == {"rows": 1000, "columns": ["a", "b"]}

    assert Variable.unset("batch_size") is True
    assert Variable.unset("batch_size") is False
    assert Variable.get("batch_size", default="gone") == "gone"


def test_variable_values_and_names_are_checked_before_sending(store: Store) -> None:
    with pytest.raises(ValueError, match="Variable name 'Batch Size' may only contain lowercase"):
        Variable.set("Batch Size", 1)
    with pytest.raises(ValueError, match=r"must be JSON .* not datetime"):
        import datetime as dt

        Variable.set("when", dt.datetime.now())
    with pytest.raises(ValueError, match="65536 bytes"):
        Variable.set("big", "x" * 70_000)
    assert Variable.set("pair", (1, 2)).value == [1, 2]


def test_async_variables(store: Store) -> None:
    async def main() -> tuple[object, object, bool]:
        await Variable.aset("region", "eu-west-1")
        value = await Variable.aget("region")
        missing = await Variable.aget("nope", default="fallback")
        return value, missing, await Variable.aunset("region")

    assert asyncio.run(main()) == ("eu-west-1", "fallback", True)


def test_variables_inside_a_flow(store: Store) -> None:
    Variable.set("greeting", "hello")

    @task
    def greet(name: str) -> str:
        return f"{Variable.get('greeting')} {name}"

    @flow
    def greeter() -> str:
        return greet("world")

    assert greeter() == "hello world"


def test_secret_save_load_get(store: Store, tmp_path: Path) -> None:
    secret_id = Secret(value=VALUE).save("api-token")
    assert len(str(secret_id)) == 36
    loaded = Secret.load("api-token")
    assert loaded.get() == VALUE
    assert VALUE not in repr(loaded)
    assert VALUE not in str(loaded.value)
    assert str(loaded.value) == "**********"
    assert loaded.value.get_secret_value() == VALUE
    assert os.stat(tmp_path / "home" / "secret.key").st_mode & 0o777 == 0o600

    with pytest.raises(SecretAlreadyExists, match=r"'api-token' already exists.*overwrite=True"):
        Secret(value="other").save("api-token")
    Secret(value={"user": "etl", "password": VALUE}).save("api-token", overwrite=True)
    assert Secret.load("api-token").get() == {"user": "etl", "password": VALUE}

    Secret.delete("api-token")
    with pytest.raises(ObjectNotFound, match="No secret named 'api-token'"):
        Secret.load("api-token")


def test_secret_from_a_pydantic_secret_str_and_async(store: Store) -> None:
    from pydantic import SecretStr

    async def main() -> str:
        await Secret(value=SecretStr(VALUE)).asave("db-password")
        loaded = await Secret.aload("db-password")
        return str(loaded.get())

    assert asyncio.run(main()) == VALUE


def test_secret_values_are_masked_in_the_logs_of_runs(store: Store) -> None:
    Secret(value=VALUE).save("api-token")
    Secret(value={"password": "pw-" + VALUE[::-1], "port": 5432}).save("db")

    @task
    def call_api(token: str) -> int:
        get_run_logger().warning("calling with %s", token)
        print(f"task print {token}")
        return len(token)

    @flow(log_prints=True)
    def pipeline() -> int:
        token = Secret.load("api-token").get()
        password = Secret.load("db").get()["password"]
        logger = get_run_logger()
        logger.info("token=%s password=%s", token, password)
        print("printed", token)
        try:
            raise RuntimeError(f"login failed for {token}")
        except RuntimeError:
            logger.exception("the API refused us")
        return call_api(token)

    assert pipeline() == len(VALUE)
    messages = [row["message"] for row in store.logs()]
    text = "\n".join(messages)
    assert VALUE not in text
    assert VALUE[::-1] not in text
    assert "token=******** password=********" in text
    assert "printed ********" in text
    assert "calling with ********" in text
    assert "task print ********" in text
    assert "login failed for ********" in text  # the traceback, masked too
    assert "RuntimeError" in text


def test_a_failure_quoting_a_secret_is_stored_masked(store: Store) -> None:
    Secret(value=VALUE).save("api-token")

    @task
    def login(token: str) -> None:
        raise PermissionError(f"token {token} refused")

    @flow
    def pipeline() -> None:
        login(Secret.load("api-token").get())

    state = pipeline(return_state=True)

    assert state.is_failed()
    stored = [*store.flow_runs(), *store.task_runs()]
    messages = [row["state_message"] or "" for row in stored]
    assert any("token ******** refused" in m for m in messages), messages
    assert not any(VALUE in m for m in messages)


def test_records_are_untouched_until_a_secret_is_read() -> None:
    record = logging.LogRecord("headwater.flow_runs", 20, __file__, 1, "x=%s", (VALUE,), None)
    assert run_logger.SecretMaskFilter().filter(record)
    assert (record.msg, record.args) == ("x=%s", (VALUE,))
    run_logger.mask_secret(VALUE)
    assert run_logger.SecretMaskFilter().filter(record)
    assert record.getMessage() == "x=********"


@pytest.fixture
def remote(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real server on the test's store; the SDK talks to it. Yields the server's home."""
    server_home = tmp_path / "server-home"
    with running_server(server_home, database_url) as (base, _process):
        for name in list(os.environ):
            if name.startswith("HEADWATER_") and name != "HEADWATER_TEST_DATABASE_URL":
                monkeypatch.delenv(name)
        monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "client-home"))
        monkeypatch.setenv("HEADWATER_API_URL", base)
        close_recorder()
        reset_settings()
        yield server_home
        close_recorder()
        reset_settings()


def test_variables_and_secrets_against_a_server(remote: Path, tmp_path: Path) -> None:
    Variable.set("threshold", 0.75)
    assert Variable.get("threshold") == 0.75
    assert Variable.unset("threshold") is True

    Secret(value=VALUE).save("api-token")
    assert Secret.load("api-token").get() == VALUE
    # The key lives with the server; the client never needed one.
    assert (remote / "secret.key").exists()
    assert not (tmp_path / "client-home" / "secret.key").exists()
    for log in remote.glob("server-*.log"):
        assert VALUE not in log.read_text()
