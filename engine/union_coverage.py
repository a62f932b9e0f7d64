"""Coverage below the top level: every variant of every union a mapping meets, accounted for.

``engine.coverage`` checks that each top-level request field is read, dropped, rejected or passed
through. That is not enough: a new *kind* of tool, input item, content part, output item or
stream event arrives inside a field the mapping already reads, and used to fall into a generic
``otherwise`` (Codex's ``namespace`` tools were refused as if they were built into OpenAI). So each
mapping also says, per union of the schemas it meets, what it does with each variant:

    coverage:
      request:                       # the client's request: variants the mapping receives
        tools[]: {cases: tool}       # maps.tool's switch has a case for each variant
      response:                      # the client's answers: variants the mapping produces
        output[]:
          mapped: [message, function_call, custom_tool_call, reasoning]
          drop: {"*_call": a chat upstream runs no built-in tool}
      stream: {events: {...}}        # stream events produced (its own event ids count as mapped)
      upstream_response: {...}       # the upstream's answers: variants the mapping receives
      upstream_stream: {...}         # upstream stream events (its rules' ``for:`` count as mapped)

A variant is accounted for when it is a case of the named map's ``switch``, listed in ``mapped``,
or matched by a ``drop`` or ``reject`` pattern (``fnmatch`` globs) with its reason. ``mapper lint``
fails on a variant that is none of these, on a union site with no declaration, and on a stale
declaration (a ``mapped`` name or a pattern that matches no variant).

Where the unions are is a fact about each API, so it lives here (``UNION_SITES``), not in the
mappings: a path into the payload (``input[].content[]``) and the property that tells the variants
apart. The variants themselves are read from the vendored schemas, following ``$ref``, ``allOf``
and nested unions, so refreshing ``schemas/openai/`` is what surfaces a new one.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from typing import Any, Iterator


from .apis import schema_document
from .coverage import API_SCHEMAS

# (the API, which of its payloads) -> {site path: discriminating property}. A path is fields
# joined by dots, ``[]`` stepping into an array's items; ``events`` is a stream's frame itself.
UNION_SITES: dict[tuple[str, str], dict[str, str]] = {
    ("openai.responses", "request"): {
        "tools[]": "type",
        "tools[].tools[]": "type",  # inside a namespace tool
        "tool_choice": "type",
        "input[]": "type",
        "input[].content[]": "type",
        "input[].output[]": "type",  # a tool result's content parts
        "text.format": "type",
    },
    ("openai.responses", "response"): {
        "output[]": "type",
        "output[].content[]": "type",
        "output[].content[].annotations[]": "type",
    },
    ("openai.responses", "stream"): {"events": "type"},
    ("openai.chat", "request"): {
        "messages[]": "role",
        "messages[].content[]": "type",
        "tools[]": "type",
        "tool_choice": "type",
        "response_format": "type",
    },
    ("openai.chat", "response"): {
        "choices[].message.tool_calls[]": "type",
        "choices[].message.annotations[]": "type",
    },
    ("openai.chat", "stream"): {
        "choices[].delta.tool_calls[]": "type",
    },
    ("anthropic.messages", "request"): {
        "system[]": "type",
        "messages[]": "role",
        "messages[].content[]": "type",
        "messages[].content[].source": "type",
        "messages[].content[].content[]": "type",  # a tool result's blocks
        "tools[]": "type",
        "tool_choice": "type",
        "thinking": "type",
    },
    ("anthropic.messages", "response"): {
        "content[]": "type",
    },
    ("anthropic.messages", "stream"): {
        "events": "type",
        "content_block": "type",
        "delta": "type",
    },
}

# coverage sections: (section, which API's payload, which payload)
SECTIONS = (("request", "from", "request"), ("response", "from", "response"),
            ("stream", "from", "stream"), ("upstream_response", "to", "response"),
            ("upstream_stream", "to", "stream"))


def union_variants(api: str, kind: str, site: str) -> tuple[str, ...]:
    """The discriminator values of the union at ``site`` of an API's payload, sorted."""
    schema_name = API_SCHEMAS[api][kind]
    discriminator = UNION_SITES[(api, kind)][site]
    return _variants(schema_name, site, discriminator)


@lru_cache(maxsize=None)
def _variants(schema_name: str, site: str, discriminator: str) -> tuple[str, ...]:
    schema = schema_document(schema_name)
    walker = _Walker(schema.get("$defs", {}))
    nodes = [schema] if site == "events" else list(walker.at(schema, _steps(site)))
    if site in ("content_block", "delta"):  # a field of the stream's events
        nodes = list(walker.at(schema, [site]))
    values: set[str] = set()
    for node in nodes:
        values |= walker.discriminators(node, discriminator)
    return tuple(sorted(values))


def _steps(site: str) -> list[str]:
    steps = []
    for part in site.split("."):
        name = part.removesuffix("[]")
        steps.append(name)
        steps.extend("[]" for _ in range((len(part) - len(name)) // 2))
    return steps


class _Walker:
    """Reads a JSON Schema the way the payload is shaped: through ``$ref``, ``allOf`` and unions."""

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions

    def alternatives(self, node: Any, seen: frozenset[str] = frozenset()) -> Iterator[dict]:
        """``node`` and every schema it may stand for: referenced, combined, or one of a union."""
        if not isinstance(node, dict):
            return
        reference = node.get("$ref")
        if isinstance(reference, str):
            name = reference.rsplit("/", 1)[-1]
            if name not in seen:
                yield from self.alternatives(self.definitions.get(name), seen | {name})
        yield node
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key, ()):
                yield from self.alternatives(sub, seen)
        for key in ("then", "else"):
            if key in node:
                yield from self.alternatives(node[key], seen)

    def at(self, node: Any, steps: list[str]) -> Iterator[dict]:
        """The schemas found at ``steps`` below ``node``, across every alternative."""
        if not steps:
            yield node
            return
        step, rest = steps[0], steps[1:]
        for alternative in self.alternatives(node):
            if step == "[]":
                if "items" in alternative:
                    yield from self.at(alternative["items"], rest)
            elif step in alternative.get("properties", {}):
                yield from self.at(alternative["properties"][step], rest)

    def discriminators(self, node: Any, name: str) -> set[str]:
        """Every value the property ``name`` may take in the objects ``node`` describes."""
        values: set[str] = set()
        for alternative in self.alternatives(node):
            prop = alternative.get("properties", {}).get(name)
            for value_schema in self.alternatives(prop):
                if isinstance(value_schema.get("const"), str):
                    values.add(value_schema["const"])
                values.update(v for v in value_schema.get("enum", ()) if isinstance(v, str))
        return values


# -- checking a mapping ----------------------------------------------------------------------------


def union_problems(spec: Any, from_api: str, to_api: str) -> list[str]:
    """What ``spec`` (a resolved mapping) leaves unaccounted for, one message per problem."""
    coverage = spec.get("coverage") or {}
    problems: list[str] = []
    for section, side, kind in SECTIONS:
        api = from_api if side == "from" else to_api
        sites = UNION_SITES.get((api, kind), {})
        declared = coverage.get(section) or {}
        for site in declared:
            if site not in sites:
                problems.append(f"coverage.{section}: '{site}' is not a union site of {api} "
                                f"{kind}s (sites: {', '.join(sites) or 'none'})")
        for site in sites:
            variants = union_variants(api, kind, site)
            if not variants:
                continue
            where = f"coverage.{section}.{site}"
            if site not in declared:
                problems.append(f"{where}: no declaration for the union of {api} {kind} "
                                f"'{site}' ({len(variants)} variants): say what each is")
                continue
            problems += _site_problems(declared[site] or {}, variants, spec, section, where)
    return problems


def _site_problems(declaration: dict[str, Any], variants: tuple[str, ...], spec: Any,
                   section: str, where: str) -> list[str]:
    problems: list[str] = []
    accounted: set[str] = set()
    cases = declaration.get("cases")
    if cases is not None:
        switch = (spec.get("maps") or {}).get(cases)
        if not isinstance(switch, dict) or not isinstance(switch.get("cases"), dict):
            problems.append(f"{where}: cases names no map with a switch ('{cases}')")
        else:
            accounted |= {str(case) for case in switch["cases"]}
    mapped = set(declaration.get("mapped") or ()) | _derived(spec, section)
    stale = sorted(set(declaration.get("mapped") or ()) - set(variants))
    problems += [f"{where}: mapped names '{name}', which is no variant" for name in stale]
    accounted |= mapped
    for disposition in ("drop", "reject"):
        for pattern in declaration.get(disposition) or {}:
            matched = fnmatch.filter(variants, str(pattern))
            if not matched:
                problems.append(f"{where}: {disposition} pattern '{pattern}' matches no variant")
            accounted |= set(matched)
    for variant in variants:
        if variant not in accounted:
            how = f"a case of maps.{cases}" if cases else "a case"
            problems.append(f"{where}: variant '{variant}' is neither {how}, mapped, dropped nor "
                            "rejected (add it, with the reason, to this declaration)")
    return problems


def _derived(spec: Any, section: str) -> set[str]:
    """Variants a stream section shows it handles: its event ids, or its rules' ``for:`` values."""
    stream = spec.get("stream") or {}
    if section == "stream":
        return set(_event_ids(stream))
    if section == "upstream_stream":
        found: set[str] = set()
        for rule in (stream.get("rules") or {}).values():
            values = rule.get("for") if isinstance(rule, dict) else None
            found |= {values} if isinstance(values, str) else set(values or ())
        return found
    return set()


def _event_ids(stream: dict[str, Any]) -> Iterator[str]:
    for block in ("start", "end", "fail"):
        yield from (stream.get(block) or {})
    for kind in (stream.get("kinds") or {}).values():
        for phase in ("open", "delta", "close"):
            yield from (kind.get(phase) or {})
        for part in (kind.get("parts") or {}).values():
            for phase in ("open", "delta", "close"):
                yield from (part.get(phase) or {})
