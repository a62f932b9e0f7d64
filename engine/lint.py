"""``mapper lint``: compile a mapping and check that it accounts for every field of the source API.

A mapping passes when it compiles (schema, expressions, function names, references), when every
top-level property of the source API's request schema, and of the upstream API's response schema,
is read by a rule, dropped with a reason, rejected with a message or passed through, and when
every variant of every union it meets (tools, items, content parts, events: see
``engine.union_coverage``) is accounted for the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .compile import compile_mapping
from .coverage import API_SCHEMAS, gaps, schema_properties
from .errors import MapperError
from .load import load
from .mapping import Document, Mapping
from .union_coverage import UNION_SITES, union_problems

APIS_WITH_UNIONS = frozenset(api for api, _ in UNION_SITES)


@dataclass(slots=True)
class LintReport:
    reference: str
    mapping: Mapping | None = None
    problems: list[str] = field(default_factory=list)
    covered: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def lint(reference: str) -> LintReport:
    """Compile ``reference`` and check its coverage of the source schemas."""
    report = LintReport(reference)
    try:
        loaded = load(reference)
        report.mapping = compile_mapping(loaded)
    except MapperError as error:
        report.problems.extend(str(error).splitlines())
        return report
    mapping = report.mapping
    _check(report, "request", mapping.request, API_SCHEMAS[mapping.from_api]["request"],
           "request field '{}' is neither mapped, dropped (request.drop), rejected (request.reject) "
           "nor passed through (request.passthrough)")
    _check(report, "response", mapping.response, API_SCHEMAS[mapping.to_api]["response"],
           "upstream response field '{}' is neither read nor dropped (response.drop)")
    if mapping.from_api in APIS_WITH_UNIONS and mapping.to_api in APIS_WITH_UNIONS:
        where = mapping.sources[-1]
        report.problems.extend(f"{where}: {problem}" for problem in
                               union_problems(loaded.spec, mapping.from_api, mapping.to_api))
    return report


def _check(report: LintReport, section: str, document: Document | None, schema: str,
           message: str) -> None:
    if document is None:
        return
    properties = schema_properties(schema)
    missing = gaps(properties, set(document.known))
    report.covered[section] = (len(properties) - len(missing), len(properties))
    where = report.mapping.sources[-1] if report.mapping else report.reference
    report.problems.extend(f"{where}: {message.format(name)}" for name in missing)
