"""Functions for the client's tools as a chat upstream sees them: namespaces flattened, names kept.

A Responses client may group its function and custom tools under a ``namespace`` tool (Codex's
``multi_agent_v1``, its MCP servers); the model's calls then come back as ``function_call`` /
``custom_tool_call`` items that carry ``namespace`` beside the tool's own ``name``. Chat has one flat
list of functions whose names must match ``^[a-zA-Z0-9_-]{1,64}$``, so each namespaced tool goes
upstream under a *qualified* name and every name the model answers with is read back into the
client's terms.

The qualified name is Codex's own flattening (``codex-rs/protocol/src/tool_name.rs``): the namespace
without trailing underscores, ``__``, the name without leading ones (``mcp__github__`` and
``create_issue`` give ``mcp__github__create_issue``). A name that would not be valid for chat (too
long, or with other characters) is shortened reversibly: cleaned, cut, and suffixed with a hash of
the pair, so two tools never share one. Reading a name back needs no state of mapper's: the
client's request (``ctx.request``) lists every tool, and so says which flat name is which tool.
"""

from __future__ import annotations

import hashlib
import re

from ..context import Context
from ..errors import RejectedField
from ..types import Json
from .custom_tools import custom_tool_input
from .registry import Example, register

CHAT_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
_DELIMITER = "__"
_HASH_DIGITS = 8

_REQUEST = {"tools": [
    {"type": "function", "name": "shell"},
    {"type": "custom", "name": "apply_patch"},
    {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
     "tools": [{"type": "function", "name": "spawn", "description": "Start one."},
               {"type": "custom", "name": "note"}]},
]}


def qualified(namespace: str | None, name: str) -> str:
    """The flat name a chat upstream knows a tool by (see the module docstring)."""
    if not namespace:
        return name
    joined = f"{namespace.rstrip('_')}{_DELIMITER}{name.lstrip('_')}"
    if CHAT_NAME.match(joined):
        return joined
    digest = hashlib.sha256(f"{namespace}\0{name}".encode()).hexdigest()[:_HASH_DIGITS]
    return f"{_INVALID.sub('_', joined)[:64 - _HASH_DIGITS - 1]}_{digest}"


def _tool_table(ctx: Context) -> dict[str, tuple[str | None, str, bool]]:
    """Flat name -> (namespace, own name, is custom), for every tool of the client's request."""
    request = ctx.request
    tools = request.get("tools") if request.__class__ is dict else None
    table: dict[str, tuple[str | None, str, bool]] = {}
    if tools.__class__ is not list:
        return table
    for tool in tools:
        if tool.__class__ is not dict:
            continue
        kind, name = tool.get("type"), tool.get("name")
        if kind in ("function", "custom") and name.__class__ is str:
            table.setdefault(name, (None, name, kind == "custom"))
        elif kind == "namespace" and name.__class__ is str and tool.get("tools").__class__ is list:
            for inner in tool["tools"]:
                if inner.__class__ is dict and inner.get("name").__class__ is str:
                    table.setdefault(qualified(name, inner["name"]),
                                     (name, inner["name"], inner.get("type") == "custom"))
    return table


@register("qualified_tool_name", examples=[
    Example(given="spawn", args={"namespace": "multi_agent_v1"}, expect="multi_agent_v1__spawn"),
    Example(given="create_issue", args={"namespace": "mcp__github__"},
            expect="mcp__github__create_issue"),
    Example(given="shell", args={"namespace": None}, expect="shell"),
    Example(given="fetch.page", args={"namespace": "web"}, expect="web__fetch_page_2b719af0"),
])
def qualified_tool_name(name: Json, ctx: Context, namespace: Json = None) -> Json:
    """The chat function name of a (possibly namespaced) tool: ``namespace__name``, valid for chat."""
    if name.__class__ is not str or namespace.__class__ is not str:
        return name
    return qualified(namespace, name)


@register("namespace_tools", examples=[
    Example(given=_REQUEST["tools"][2],
            expect=[{"type": "function", "name": "multi_agent_v1__spawn",
                     "description": "Start one.\n\n(multi_agent_v1: Sub-agents.)"},
                    {"type": "custom", "name": "multi_agent_v1__note",
                     "description": "(multi_agent_v1: Sub-agents.)"}]),
    Example(given={"type": "namespace", "name": "n", "description": "",
                   "tools": [{"type": "namespace", "name": "m", "tools": []}]},
            raises="RejectedField"),
])
def namespace_tools(namespace: Json, ctx: Context) -> Json:
    """The tools of a ``namespace`` tool, each under its qualified name, the namespace described.

    The model sees one flat list, so each tool's description says which namespace it belongs to
    and what that namespace is for.
    """
    name = namespace.get("name")
    about = namespace.get("description")
    note = f"({name}: {about})" if about else f"({name})"
    tools = []
    for tool in namespace.get("tools") or ():
        if tool.__class__ is not dict or tool.get("type") not in ("function", "custom"):
            kind = tool.get("type") if tool.__class__ is dict else type(tool).__name__
            raise RejectedField(f"a namespace holds function and custom tools only, not '{kind}'")
        description = tool.get("description")
        tools.append({**tool, "name": qualified(name, tool.get("name") or ""),
                      "description": f"{description}\n\n{note}" if description else note})
    return tools


@register("unique_tool_names", examples=[
    Example(given=[{"type": "function", "function": {"name": "a"}},
                   {"type": "function", "function": {"name": "b"}}],
            expect=[{"type": "function", "function": {"name": "a"}},
                    {"type": "function", "function": {"name": "b"}}]),
    Example(given=[{"type": "function", "function": {"name": "a__b"}},
                   {"type": "function", "function": {"name": "a__b"}}],
            raises="RejectedField"),
])
def unique_tool_names(tools: Json, ctx: Context) -> Json:
    """Chat tools as they are, refused when two share a name (a namespaced tool and a plain one)."""
    seen: set[str] = set()
    for tool in tools if tools.__class__ is list else ():
        function = tool.get("function") if tool.__class__ is dict else None
        name = function.get("name") if function.__class__ is dict else None
        if name in seen:
            raise RejectedField(f"two tools are both called '{name}' once namespaces are flattened "
                                "for the Chat Completions upstream; rename one of them")
        seen.add(name)
    return tools


@register("client_tool", examples=[
    Example(given="multi_agent_v1__spawn", context={"request": _REQUEST},
            expect={"name": "spawn", "namespace": "multi_agent_v1", "custom": False}),
    Example(given="apply_patch", context={"request": _REQUEST},
            expect={"name": "apply_patch", "namespace": None, "custom": True}),
    Example(given="unknown", context={"request": _REQUEST},
            expect={"name": "unknown", "namespace": None, "custom": False}),
])
def client_tool(name: Json, ctx: Context) -> Json:
    """The client's tool behind a chat function name: its own name, its namespace, whether custom."""
    if name.__class__ is not str:
        return None
    namespace, own, custom = _tool_table(ctx).get(name, (None, name, False))
    return {"name": own, "namespace": namespace, "custom": custom}


@register("chat_tool_choice_name", examples=[
    Example(given="spawn", context={"request": _REQUEST}, expect="multi_agent_v1__spawn"),
    Example(given="multi_agent_v1__spawn", context={"request": _REQUEST},
            expect="multi_agent_v1__spawn"),
    Example(given="shell", context={"request": _REQUEST}, expect="shell"),
    Example(given="nothing", context={"request": _REQUEST}, expect="nothing"),
])
def chat_tool_choice_name(name: Json, ctx: Context) -> Json:
    """The chat function a ``tool_choice`` names: a plain tool, or a namespaced one by either name.

    ``tool_choice`` has no ``namespace`` field, so a namespaced tool is named by its flat name or,
    when no plain tool has that name and only one namespace does, by its own name.
    """
    table = _tool_table(ctx)
    if name.__class__ is not str or name in table:
        return name
    matches = [flat for flat, (namespace, own, _) in table.items()
               if namespace is not None and own == name]
    return matches[0] if len(matches) == 1 else name


@register("client_tool_calls", examples=[
    Example(
        given=[{"id": "c1", "type": "function",
                "function": {"name": "apply_patch", "arguments": '{"input": "P"}'}},
               {"id": "c2", "type": "function",
                "function": {"name": "multi_agent_v1__spawn", "arguments": "{}"}},
               {"id": "c3", "type": "function", "function": {"name": "shell", "arguments": "{}"}}],
        expect=[{"id": "c1", "type": "custom", "custom": {"name": "apply_patch", "input": "P"}},
                {"id": "c2", "type": "function", "namespace": "multi_agent_v1",
                 "function": {"name": "spawn", "arguments": "{}"}},
                {"id": "c3", "type": "function", "function": {"name": "shell", "arguments": "{}"}}],
        context={"request": _REQUEST}),
])
def client_tool_calls(tool_calls: Json, ctx: Context) -> Json:
    """Chat tool calls in the client's terms: custom tools' calls unwrapped, namespaces split off.

    A call of the function that stands for a custom tool becomes chat's custom call shape
    (``{type: custom, custom: {name, input}}``, which an upstream with native custom tools sends
    too); a namespaced tool's call gets its own name back and ``namespace`` beside it.
    """
    if tool_calls.__class__ is not list:
        return tool_calls
    table = _tool_table(ctx)
    if not table:
        return tool_calls
    calls = []
    for call in tool_calls:
        function = call.get("function") if call.__class__ is dict else None
        found = table.get(function.get("name")) if function.__class__ is dict else None
        if found is not None and call.get("type", "function") == "function":
            namespace, own, custom = found
            rest = {key: value for key, value in call.items() if key not in ("function", "type")}
            if namespace is not None:
                rest["namespace"] = namespace
            if custom:
                call = {**rest, "type": "custom",
                        "custom": {"name": own, "input": custom_tool_input(
                            function.get("arguments") or "", ctx)}}
            else:
                call = {**rest, "type": "function", "function": {**function, "name": own}}
        calls.append(call)
    return calls
