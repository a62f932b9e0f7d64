"""Jinja2 templates, compiled once, that make strings and nothing else.

Templates are for text: error messages that name a field, ``data:`` URLs, ids with a prefix. Typed
logic belongs in JMESPath and ``as:``. Rendering a Jinja template costs a few microseconds, so a
template that is only literal text and ``{{ path }}`` substitutions is written into the generated
code as a string concatenation over inline path reads instead (``engine.paths``), with the same
output: ``None`` renders as the empty string and any other value as Python's ``str()``, as Jinja
prints it.

Variables are the scope's fields; a scope that is not an object is available as ``value``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jinja2
from jinja2 import meta

from .errors import ExpressionError
from .paths import is_plain, write_path
from .source import Code, SourceWriter
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


def template_text(value: Json) -> str:
    """A substituted value as Jinja prints it: nothing for ``None``, else ``str()``."""
    if value is None:
        return ""
    return value if value.__class__ is str else str(value)


TEMPLATE_RUNTIME: dict[str, Any] = {"template_text": template_text}
"""What the statements ``write_template`` writes refer to (besides ``engine.paths.PATH_RUNTIME``)."""


def write_template(w: SourceWriter, source: str, scope: str) -> Code:
    """Write statements rendering ``source`` against ``scope``; raises ``ExpressionError``.

    The value is always a string: a literal when the template substitutes nothing, else a
    variable of its own.
    """
    pieces = _substitutions(source)
    if pieces is not None and all(expression is None for _, expression in pieces):
        return Code(repr(source), nullable=False, literal=True)
    target = w.var("t")
    if pieces is None:
        render = w.constant(_jinja(source), "TPL")
        w(f"{target} = {render}({scope}, ctx)")
        return Code(target, nullable=False, fresh=True)
    terms = []
    for text, expression in pieces:
        if text:
            terms.append(repr(text))
        if expression is not None:
            value = write_path(w, expression, scope).expr
            terms.append(f"({value} if {value}.__class__ is str else template_text({value}))")
    w(f"{target} = {' + '.join(terms)}")
    return Code(target, nullable=False, fresh=True)


def template_variables(source: str) -> set[str]:
    """The top-level names a template reads from its scope."""
    return meta.find_undeclared_variables(_ENVIRONMENT.parse(source)) - {"value", "options"}


def _jinja(source: str) -> Render:
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


def _substitutions(source: str) -> list[tuple[str, str | None]] | None:
    """``[(text, path)]`` when ``source`` is only text and ``{{ plain.path }}``; else None (Jinja)."""
    if any(marker in source for marker in _JINJA_SYNTAX):
        return None
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for match in _SUBSTITUTION.finditer(source):
        expression = match.group(1)
        if not is_plain(expression) or expression in ("value", "options"):
            return None
        pieces.append((source[position:match.start()], expression))
        position = match.end()
    tail = source[position:]
    if "{{" in tail or "}}" in tail:
        return None
    if tail:
        pieces.append((tail, None))
    return pieces
