"""Matching events and resources against patterns: pure functions, no I/O.

An event names what happened (`headwater.flow-run.Failed`, `customer.signup`)
to a resource, a flat set of string labels whose `headwater.resource.id` is
its id (`headwater.flow-run.<uuid>`). Related resources carry a
`headwater.resource.role` too (`flow`, `deployment`, `tag`, ...).

Patterns are what triggers and filters are written in:

- a name pattern matches exactly, or, ending in `*`, by prefix
  (`headwater.flow-run.*`); a leading `!` negates it;
- a resource specification maps labels to one pattern or a list of patterns
  (any may match); every label of the specification must match. A label the
  resource lacks matches only a negated pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

#: The label that holds a resource's id, its role among related resources, its name.
RESOURCE_ID = "headwater.resource.id"
RESOURCE_ROLE = "headwater.resource.role"
RESOURCE_NAME = "headwater.resource.name"

Labels = Mapping[str, str]
#: label -> pattern or patterns.
Specification = Mapping[str, str | Sequence[str]]


def name_matches(pattern: str, value: str | None) -> bool:
    """Whether `value` matches one name pattern (`x`, `x.*`, `!x`, `*`)."""
    if pattern.startswith("!"):
        return not name_matches(pattern[1:], value)
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def any_name_matches(patterns: Iterable[str], value: str | None) -> bool:
    """Whether `value` matches one of `patterns` (negated ones must all hold)."""
    positive = False
    found = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if not name_matches(pattern, value):
                return False
            continue
        positive = True
        if not found and name_matches(pattern, value):
            found = True
    return found or not positive


def resource_matches(specification: Specification, labels: Labels) -> bool:
    """Whether a resource's labels satisfy every label of `specification`."""
    for label, patterns in specification.items():
        options = (patterns,) if isinstance(patterns, str) else patterns
        if not options:
            continue
        if not any_name_matches(options, labels.get(label)):
            return False
    return True


def related_matches(
    specifications: Specification | Sequence[Specification], related: Sequence[Labels]
) -> bool:
    """Whether, for each specification, some related resource satisfies it."""
    specs = [specifications] if isinstance(specifications, Mapping) else specifications
    return all(
        any(resource_matches(spec, resource) for resource in related) for spec in specs if spec
    )


def label_value(label: str, resource: Labels, related: Sequence[Labels] = ()) -> str | None:
    """A label's value on the resource, or `related:<role>:<label>` on a related one.

    `for_each` keys use this: `headwater.resource.id` buckets by the event's
    resource, `related:deployment:headwater.resource.id` by its deployment.
    """
    if label.startswith("related:"):
        role, _, name = label[len("related:") :].partition(":")
        for resource in related:
            if resource.get(RESOURCE_ROLE) == role and name in resource:
                return resource[name]
        return None
    return resource.get(label)
