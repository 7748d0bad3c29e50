"""Job templates and the infrastructure registry: defaults, rendering, validation, plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from headwater.worker.infrastructure import (
    ENTRY_POINT_GROUP,
    Infrastructure,
    JobTemplateError,
    UnknownInfrastructureType,
    check_job_variables,
    default_base_job_template,
    get_infrastructure,
    infrastructure_types,
    render_job_configuration,
    validate_job_template,
)

PROCESS = default_base_job_template("process")

TEMPLATE: dict[str, Any] = {
    "job_configuration": {
        "image": "{{ image }}",
        "command": ["python", "-m", "app", "--cpu={{ cpu }}"],
        "labels": {"team": "{{ team }}", "flags": "{{ flags }}"},
        "note": "{{ missing_default }}",
    },
    "variables": {
        "type": "object",
        "required": ["team"],
        "properties": {
            "image": {"type": "string", "default": "python:3.12"},
            "cpu": {"type": "number", "minimum": 0.1, "default": 1},
            "team": {"type": "string", "enum": ["data", "web"]},
            "flags": {"type": "object", "default": {"debug": False}},
            "missing_default": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    },
}


def test_the_process_template_is_built_in_without_the_worker() -> None:
    variables = PROCESS["variables"]["properties"]
    assert {name: schema.get("default") for name, schema in variables.items()} == {
        "env": {},
        "working_dir": None,
        "command": None,
        "stream_output": True,
        "labels": {},
    }
    assert all(schema.get("description") for schema in variables.values())
    assert "process" in infrastructure_types()
    # A server builds pools' templates without importing the worker.
    code = (
        "import sys\n"
        "from headwater.worker.infrastructure import default_base_job_template\n"
        "default_base_job_template('process')\n"
        "print('headwater.worker.process' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_run_variables_win_over_the_deployments_and_the_pools() -> None:
    configuration = render_job_configuration(
        PROCESS,
        pool_defaults={"working_dir": "/srv", "env": {"FROM": "pool"}},
        deployment_job_variables={"env": {"FROM": "deployment"}, "command": "python etl.py"},
        run_job_variables={"env": {"FROM": "run", "DAY": "2026-11-20"}},
    )
    assert configuration == {
        "command": "python etl.py",
        "env": {"FROM": "run", "DAY": "2026-11-20"},
        "working_dir": "/srv",
        "stream_output": True,
        "labels": {},
    }
    assert render_job_configuration(PROCESS)["env"] == {}


def test_a_whole_placeholder_keeps_its_type_and_a_partial_one_becomes_text() -> None:
    configuration = render_job_configuration(
        TEMPLATE, run_job_variables={"team": "data", "cpu": 2.5}
    )
    assert configuration == {
        "image": "python:3.12",
        "command": ["python", "-m", "app", "--cpu=2.5"],
        "labels": {"team": "data", "flags": {"debug": False}},
        "note": None,
    }
    rendered = render_job_configuration(
        {
            "job_configuration": {"text": "{{ a }}|{{ b }}|{{ c }}|{{a}}"},
            "variables": {"properties": {"a": {}, "b": {}, "c": {}}},
        },
        run_job_variables={"a": None, "b": {"k": [1, True]}, "c": 3},
    )
    assert rendered == {"text": '|{"k":[1,true]}|3|'}
    assert TEMPLATE["variables"]["properties"]["flags"]["default"] == {"debug": False}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"env": {"A": 1}}, "Job variable 'env.A': expected a string, got 1 (integer)."),
        ({"working_dir": 3}, "Job variable 'working_dir': expected a string or null, got 3"),
        ({"stream_output": "yes"}, "Job variable 'stream_output': expected true or false"),
        (
            {"enviroment": {}},
            "Unknown job variable 'enviroment'; the work pool's job template has: command, "
            "env, labels, stream_output, working_dir.",
        ),
    ],
)
def test_bad_process_variables_are_named(variables: dict[str, Any], message: str) -> None:
    with pytest.raises(JobTemplateError) as caught:
        render_job_configuration(PROCESS, deployment_job_variables=variables)
    assert str(caught.value).startswith(message)


def test_schema_rules_are_checked() -> None:
    with pytest.raises(JobTemplateError, match="'team' is required"):
        render_job_configuration(TEMPLATE)
    with pytest.raises(JobTemplateError, match='\'team\': expected one of "data", "web"'):
        render_job_configuration(TEMPLATE, run_job_variables={"team": "ops"})
    with pytest.raises(JobTemplateError, match=r"'cpu': expected at least 0\.1, got 0"):
        render_job_configuration(TEMPLATE, run_job_variables={"team": "web", "cpu": 0})
    with pytest.raises(JobTemplateError, match="'cpu': expected a number, got true"):
        render_job_configuration(TEMPLATE, run_job_variables={"team": "web", "cpu": True})
    # Unknown names are allowed where the schema allows them (no additionalProperties).
    render_job_configuration(TEMPLATE, run_job_variables={"team": "web", "extra": 1})


def test_references_to_definitions_are_followed() -> None:
    template = {
        "job_configuration": {"limits": "{{ limits }}"},
        "variables": {
            "type": "object",
            "properties": {"limits": {"$ref": "#/$defs/Limits"}},
            "$defs": {
                "Limits": {
                    "type": "object",
                    "properties": {"memory": {"type": "integer"}},
                    "additionalProperties": False,
                }
            },
        },
    }
    ok = render_job_configuration(template, run_job_variables={"limits": {"memory": 512}})
    assert ok == {"limits": {"memory": 512}}
    with pytest.raises(JobTemplateError, match="'limits': unknown key 'cpu'"):
        render_job_configuration(template, run_job_variables={"limits": {"cpu": 2}})
    with pytest.raises(JobTemplateError, match=r"'limits\.memory': expected an integer"):
        render_job_configuration(template, run_job_variables={"limits": {"memory": "1G"}})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ([], "A job template is a JSON object"),
        ({"job_configuration": {}, "variable": {}}, "not 'variable'"),
        ({"job_configuration": [], "variables": {}}, "job_configuration must be a JSON object"),
        ({"variables": {"type": "array"}}, "variables must be the JSON schema of an object"),
        ({"variables": {"properties": []}}, "variables.properties must map"),
        (
            {"job_configuration": {"a": ["x", "{{ image }}"]}, "variables": {}},
            "job_configuration.a[1] uses {{ image }}, but 'image' is not a variable",
        ),
        (
            {"variables": {"properties": {"n": {"type": "integer", "default": "two"}}}},
            "The default of variable 'n': expected an integer",
        ),
        (
            {"variables": {"properties": {"n": {"$ref": "https://example.com/s.json"}}}},
            "only references inside the variables schema",
        ),
    ],
)
def test_malformed_templates_are_refused(template: Any, message: str) -> None:
    with pytest.raises(JobTemplateError, match=None) as caught:
        validate_job_template(template)
    assert message in str(caught.value)


def test_a_deployment_may_leave_required_variables_to_its_runs() -> None:
    check_job_variables(TEMPLATE, {"image": "python:3.13"})
    with pytest.raises(JobTemplateError, match="'image': expected a string"):
        check_job_variables(TEMPLATE, {"image": 3})


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownInfrastructureType) as caught:
        get_infrastructure("kubernetes")
    assert "Unknown work pool type 'kubernetes'; known types: process." in str(caught.value)
    with pytest.raises(UnknownInfrastructureType):
        default_base_job_template("kubernetes")


def _install_plugin(root: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str) -> None:
    """A package with entry points on sys.path, as `pip install` would leave it."""
    (root / "fake_infra.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel, ConfigDict

            from headwater.worker.infrastructure import Infrastructure


            class FakeVariables(BaseModel):
                model_config = ConfigDict(extra="forbid")
                image: str = "python:3.12"


            class FakeInfrastructure(Infrastructure):
                type = "fake"
                Variables = FakeVariables
                job_configuration = {"image": "{{ image }}"}

                def start(self, flow_run_id, configuration, env):
                    raise NotImplementedError

                def kill(self, handle, grace_seconds):
                    raise NotImplementedError


            class NotAPlugin:
                pass
            """
        )
    )
    info = root / "fake_infra-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-infra\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}")
    monkeypatch.syspath_prepend(str(root))


def test_plugins_are_found_through_their_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(
        tmp_path,
        monkeypatch,
        "fake = fake_infra:FakeInfrastructure\nbroken = fake_infra:NotAPlugin\n",
    )

    assert infrastructure_types() == ["broken", "fake", "process"]
    plugin = get_infrastructure("fake")
    assert issubclass(plugin, Infrastructure)
    template = default_base_job_template("fake")
    assert template["job_configuration"] == {"image": "{{ image }}"}
    assert render_job_configuration(template, run_job_variables={"image": "pypy"}) == {
        "image": "pypy"
    }
    with pytest.raises(UnknownInfrastructureType, match="not a subclass of"):
        get_infrastructure("broken")


def test_infrastructure_must_implement_start_and_kill() -> None:
    class Incomplete(Infrastructure):
        type = "incomplete"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]
