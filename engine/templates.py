"""Jinja2 templates, compiled once, that make strings and nothing else.

Templates are for text: error messages that name a field, ``data:`` URLs, ids with a prefix. Typed
logic belongs in JMESPath and ``as:``. Rendering a Jinja template costs a few microseconds, so a
template that is only literal text and ``{{ path }}`` substitutions compiles to a join over plain
getters instead, with the same output (``None`` renders as the empty string in both).

Variables are the scope's fields; a scope that is not an object is available as ``value``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jinja2
from jinja2 import meta

from .errors import ExpressionError
from .paths import compile_path, is_plain
from .types import Json

Render = Callable[[Json, Any], str]

_ENVIRONMENT = jinja2.Environment(
    autoescape=False,
    keep_trailing_newline=True,
    undefined=jinja2.Undefined,
    finalize=lambda value: "" if value is None else value,
)
_SUBSTITUTION = re.compile(r"\{\{\s*([^{}|]+?)\s*\}\}")
_JINJA_SYNTAX = ("{%", "{#", "%}", "#}")


def compile_template(source: str) -> Render:
    """Compile ``source`` into ``(scope, ctx) -> str``. Raises ``ExpressionError``."""
    fast = _compile_substitutions(source)
    if fast is not None:
        return fast
    try:
        template = _ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as error:
        raise ExpressionError(f"bad Jinja2 template: {error.message}", expression=source,
                              column=0) from None
    render = template.render

    def render_jinja(scope: Json, ctx: Any) -> str:
        variables = scope if isinstance(scope, dict) else {}
        return render(variables, value=scope, options=ctx.options)

    return render_jinja


def template_variables(source: str) -> set[str]:
    """The top-level names a template reads from its scope."""
    return meta.find_undeclared_variables(_ENVIRONMENT.parse(source)) - {"value", "options"}


def _compile_substitutions(source: str) -> Render | None:
    """A join over plain getters when ``source`` is only text and ``{{ plain.path }}``."""
    if any(marker in source for marker in _JINJA_SYNTAX):
        return None
    pieces: list[str | Callable[[Json, Any], Json]] = []
    position = 0
    for match in _SUBSTITUTION.finditer(source):
        expression = match.group(1)
        if not is_plain(expression) or expression in ("value", "options"):
            return None
        pieces.append(source[position:match.start()])
        pieces.append(compile_path(expression))
        position = match.end()
    tail = source[position:]
    if "{{" in tail or "}}" in tail:
        return None
    pieces.append(tail)
    if len(pieces) == 1:
        return lambda scope, ctx: source
    parts = tuple(piece for piece in pieces if piece != "")

    def render_fast(scope: Json, ctx: Any) -> str:
        out = []
        for part in parts:
            if part.__class__ is str:
                out.append(part)
            else:
                value = part(scope, ctx)
                if value is not None:
                    out.append(_jinja_str(value))
        return "".join(out)

    return render_fast


def _jinja_str(value: Json) -> str:
    # Jinja prints Python's str() of a value; match it exactly so both paths agree
    return value if value.__class__ is str else str(value)
