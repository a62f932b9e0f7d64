"""What ``mapper probe`` found, and what follows from it: the verdicts, the table, the overlay.

``engine.probe`` sends the requests and fills a ``ProbeReport``; this module only reads one. It
turns the verdicts into the generic overlays that fix them (``fixes``), says what no mapping can fix
(``unfixable``) and what the user should know (``hints``), and renders the report three ways: a
table for people, plain data for ``--json``, and one overlay file for ``--write-overlay``.

The overlay file is built from the generic overlay files themselves (``mappings/providers/``),
combined by id in the order ``--overlay`` would apply them, so loading it gives the very mapping that
``--mapping openai-chat --overlay A --overlay B`` gives, and its header lists the findings.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Iterable

import yaml

from .load import ENTRY_MAPS, SECTION_MAPS, locate, read_yaml
from .ops import plain
from .types import Json

OK, UNSUPPORTED, ERROR = "ok", "unsupported", "error"
EXIT_FAILED = 1
TABLE_MESSAGE_LIMIT = 100  # characters of a detail shown in the table (the JSON keeps more)

# The generic overlay that fixes a finding, in the order they are combined.
FIXES = ("no-system-role", "no-developer-role", "single-system-message", "max-completion-tokens",
         "no-stream-usage", "no-tool-choice-required", "no-parallel-tool-calls")


@dataclass(frozen=True, slots=True)
class Check:
    """One capability: its stable name, what the table calls it, the verdict and what was seen."""

    name: str
    label: str
    status: str  # ok | unsupported | error
    detail: str = ""
    http_status: int | None = None
    facts: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What one probe found. Holds no key: URLs are shown without credentials or query."""

    upstream: str
    api: str
    model: str
    base_url: str | None
    tried: tuple[str, ...]
    checks: tuple[Check, ...]

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if it ran."""
        return next((check for check in self.checks if check.name == name), None)

    @property
    def basic(self) -> Check:
        """The minimal call (chat or responses) that decides whether the upstream works at all."""
        return self.check("chat" if self.api == "chat" else "responses")  # type: ignore[return-value]

    @property
    def ok(self) -> bool:
        return self.basic.status == OK

    def status(self, name: str) -> str | None:
        check = self.check(name)
        return check.status if check else None


def exit_code(report: ProbeReport) -> int:
    """0 when the basic call works, 1 when it does not, even if ``/models`` answers."""
    return 0 if report.ok else EXIT_FAILED


# -- what the findings mean ------------------------------------------------------------------


def fixes(report: ProbeReport) -> list[str]:
    """The generic overlays that fix what the probe found (chat upstreams only), in combining order."""
    if report.api != "chat" or not report.ok:
        return []
    status = report.status
    found: set[str] = set()
    if status("system_role") == UNSUPPORTED:
        found.add("no-system-role")
    else:
        if status("developer_role") == UNSUPPORTED:
            found.add("no-developer-role")
        if status("system_not_first") == UNSUPPORTED:
            found.add("single-system-message")
    max_tokens, completion = report.check("max_tokens"), report.check("max_completion_tokens")
    if max_tokens and completion and completion.status == OK and completion.facts.get("honoured") and (
            max_tokens.status == UNSUPPORTED or not max_tokens.facts.get("honoured")):
        found.add("max-completion-tokens")
    if status("stream") == OK and status("stream_usage") == UNSUPPORTED:
        found.add("no-stream-usage")
    if status("tool_choice_required") == UNSUPPORTED:
        found.add("no-tool-choice-required")
    if status("parallel_tool_calls") == UNSUPPORTED:
        found.add("no-parallel-tool-calls")
    return [name for name in FIXES if name in found]


_UNFIXABLE = {
    "stream": "the upstream cannot stream",
    "tools": "the model cannot call tools",
    "json_schema": "no structured output; ask for JSON in the instructions instead",
    "image": "the model takes no images",
}


def unfixable(report: ProbeReport) -> list[str]:
    """Findings no overlay can fix: capabilities the model or server lacks."""
    found = [report.check(name) for name in _UNFIXABLE if report.status(name) == UNSUPPORTED]
    return [f"{check.label}: {_UNFIXABLE[check.name]}" for check in found if check is not None]


def hints(report: ProbeReport) -> list[str]:
    """Advice that follows from what was seen."""
    found: list[str] = []
    if not report.ok:
        if report.status("models") == OK:
            found.append("/models answers but the basic call does not: a connection test that only "
                         "lists models would have passed")
        other = report.check("responses_endpoint" if report.api == "chat" else "chat_endpoint")
        if other is not None and other.status == OK:
            flag = "--api responses" if report.api == "chat" else "--api chat"
            found.append(f"the other API is served: probe again with {flag}")
    reasoning = report.check("reasoning")
    if reasoning is not None and "reasoning_content" in (reasoning.facts.get("fields") or []):
        found.append("reasoning comes back as reasoning_content: if the upstream wants it sent back on "
                     "tool-call turns (DeepSeek thinking mode), start mapper with --mapping deepseek")
    return found


# -- output -----------------------------------------------------------------------------------


def render_table(report: ProbeReport) -> str:
    """The report as a readable table, one capability per line, with the upstream's own words."""
    label_width = max(len("capability"), *(len(check.label) for check in report.checks))
    lines = [f"mapper probe: {report.upstream} (api {report.api}, model {report.model})",
             f"base URL: {report.base_url or 'none answered'}"
             + (f" (tried {', '.join(report.tried)})" if len(report.tried) > 1 else ""), "",
             f"{'capability':<{label_width}}  {'result':<11}  upstream says / seen",
             f"{'-' * label_width}  {'-' * 11}  {'-' * 20}"]
    for check in report.checks:
        lines.append(f"{check.label:<{label_width}}  {check.status:<11}  "
                     f"{truncate(check.detail, TABLE_MESSAGE_LIMIT)}".rstrip())
    lines.append("")
    basic = "chat" if report.api == "chat" else "responses"
    lines.append(f"basic {basic} path: {'works' if report.ok else 'FAILS'}")
    chosen = fixes(report)
    if report.api == "chat" and report.ok:
        lines.append("overlay: " + (" + ".join(chosen) + " (--write-overlay FILE writes it)" if chosen
                                    else "none needed (openai-chat as it is)"))
    lines += [f"not fixable by a mapping: {item}" for item in unfixable(report)]
    lines += [f"note: {item}" for item in hints(report)]
    return "\n".join(lines) + "\n"


def report_as_json(report: ProbeReport) -> dict[str, Json]:
    """The report as plain data, for ``--json``."""
    return {
        "upstream": report.upstream,
        "api": report.api,
        "model": report.model,
        "base_url": report.base_url,
        "tried": list(report.tried),
        "ok": report.ok,
        "exit_code": exit_code(report),
        "checks": [{"name": check.name, "label": check.label, "status": check.status,
                    "http_status": check.http_status, "detail": check.detail, **check.facts}
                   for check in report.checks],
        "overlays": fixes(report),
        "unfixable": unfixable(report),
        "notes": hints(report),
    }


def overlay_for(report: ProbeReport) -> str | None:
    """YAML of one overlay on ``openai-chat`` combining the generic fixes found.

    None when there is nothing an overlay could be written for: a ``responses`` probe, or an
    upstream whose basic chat call fails.

    The overlay is built from the generic overlay files themselves, merged by id as ``--overlay``
    would apply them, so loading it gives the same mapping as ``--overlay A --overlay B``.
    """
    if report.api != "chat" or not report.ok:
        return None
    chosen = fixes(report)
    findings = [f"#   {check.label}: {check.status}"
                + (f" ({truncate(check.detail, 80)})" if check.detail else "") for check in report.checks]
    combines = textwrap.wrap("Combines the generic overlays " + ", ".join(chosen) + " (mappings/providers/;"
                             " each file says why its change is needed).", 98,
                             initial_indent="# ", subsequent_indent="# ")
    header = [
        f"# Written by `mapper probe` for {report.upstream}, model {report.model}.",
        f"# Base URL that answered: {report.base_url}",
        "# Findings:",
        *findings,
        "#",
        *(combines if chosen else ["# Nothing to fix: this overlay changes nothing."]),
        *(f"# Not fixable by a mapping: {item}" for item in unfixable(report)),
        "# Use it as the mapping (--mapping THIS_FILE), or on top of another one (--overlay THIS_FILE).",
    ]
    document = {
        "format": "mapper/1",
        "id": "probed",
        "version": "1.0.0",
        "extends": {"mapping": "openai-chat", "version": "^1"},
        "description": "Fixes found by mapper probe: " + (", ".join(chosen) if chosen else "none") + ".",
        **combine_overlays(chosen),
    }
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body


def combine_overlays(references: Iterable[str]) -> dict[str, Json]:
    """The entries of several overlays as one overlay: by id, later wins, ``null`` (a deletion) kept."""
    combined: dict[str, Json] = {}
    for reference in references:
        path, display = locate(reference)
        overlay = plain(read_yaml(path, display))
        for key, value in overlay.items():
            if key in ENTRY_MAPS and isinstance(value, dict):
                combined.setdefault(key, {}).update(value)
            elif key in SECTION_MAPS and isinstance(value, dict):
                section = combined.setdefault(key, {})
                for sub, entries in value.items():
                    if sub in SECTION_MAPS[key] and isinstance(entries, dict):
                        section.setdefault(sub, {}).update(entries)
                    else:
                        section[sub] = entries
    return combined


def truncate(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
