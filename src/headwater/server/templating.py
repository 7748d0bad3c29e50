"""Jinja templates in a sandbox: webhooks turn requests into events, actions render text.

Templates are written by users of the API, so they run in Jinja's
`ImmutableSandboxedEnvironment`: no attribute starting with `_`, no calls
that mutate, no access to Python internals. Rendering is bounded in output
size; errors are `TemplateError`s naming the template and the problem.

    >>> render("{{ event.event }} on {{ event.resource.id }}", {"event": ...})
    >>> render_value("{{ events | length }}", context)   # -> 10 (an int, not "10")
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

#: Rendered text is cut off (an error) past this many characters.
MAX_OUTPUT_CHARS = 1_000_000

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class TemplateError(ValueError):
    """A template that does not parse or fails to render; the message says where and why."""


@functools.cache
def _environment() -> Any:
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            # Jinja would render this as empty text; refuse it loudly instead.
            raise SecurityError(
                f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
            )

    env = Sandbox(autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = _tojson
    return env


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, default=str, sort_keys=False)


def check(template: str, what: str = "template") -> None:
    """Raise `TemplateError` if `template` does not parse."""
    from jinja2 import TemplateSyntaxError

    try:
        _environment().parse(template)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            f"The {what} does not parse: {exc.message} (line {exc.lineno})"
        ) from None


def render(template: str, context: dict[str, Any], what: str = "template") -> str:
    """`template` rendered with `context`, in the sandbox."""
    from jinja2 import TemplateError as JinjaError
    from jinja2.exceptions import SecurityError

    try:
        text: str = _environment().from_string(template).render(context)
    except SecurityError as exc:
        raise TemplateError(f"The {what} did something not allowed: {exc}") from None
    except JinjaError as exc:
        raise TemplateError(f"The {what} failed to render: {exc}") from None
    except Exception as exc:  # a filter or test raising on bad data
        raise TemplateError(f"The {what} failed to render: {type(exc).__name__}: {exc}") from None
    if len(text) > MAX_OUTPUT_CHARS:
        raise TemplateError(
            f"The {what} rendered {len(text)} characters; at most {MAX_OUTPUT_CHARS} are allowed"
        )
    return text


def render_value(value: Any, context: dict[str, Any], what: str = "value") -> Any:
    """Render templates inside a JSON value (strings, in lists and objects).

    A string that is exactly one `{{ expression }}` keeps the expression's
    type (a number stays a number, a list a list); other strings render to text.
    """
    if isinstance(value, str):
        if "{" not in value:
            return value
        single = _SINGLE_EXPRESSION.match(value)
        if single and "}}" not in single.group("expr"):
            from jinja2 import TemplateError as JinjaError

            try:
                compiled = _environment().compile_expression(single.group("expr"))
                return _plain(compiled(**context))
            except JinjaError as exc:
                raise TemplateError(f"The {what} failed to render: {exc}") from None
            except Exception as exc:
                raise TemplateError(
                    f"The {what} failed to render: {type(exc).__name__}: {exc}"
                ) from None
        return render(value, context, what)
    if isinstance(value, list):
        return [render_value(item, context, f"{what}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: render_value(item, context, f"{what}.{key}") for key, item in value.items()}
    return value


def _plain(value: Any) -> Any:
    """A rendered value as plain JSON data (Undefined becomes None)."""
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        return None
    return json.loads(json.dumps(value, default=str))
