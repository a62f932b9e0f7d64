"""The shape every op shares, and what an op may ask of the compiler and of the coverage reader.

An op is one key of a rule object (``from``, ``each``, ``as``...) together with the keys that only
go with it (``cases`` and ``otherwise`` belong to ``switch``, ``args`` to ``fn``). Its class holds
everything there is to know about it, so that adding or changing an op touches one class:

* ``schema``: the JSON schema of each key it owns, its piece of ``schemas/mapping-1.schema.json``
  (``tests/test_ops_schema.py`` checks the file against the classes), and ``requires`` for the
  keys that need another (``cases`` needs ``switch``);
* ``compile``: the statements it writes, through a ``Builder`` (the rule compiler) that it calls
  back for nested rules, paths, literals and templates; it returns a ``Code`` that says what the
  value is, so nobody has to guess from the generated names;
* ``reads``: the fields of the document root it reads while the rule's scope is still the root,
  through a ``Reader`` (``engine.coverage``).

There are four roles, in evaluation order: guards (``when``/``unless``), one source, modifiers in
written order, and the checks ``required`` then ``default``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Protocol

from ..errors import SpecError
from ..functions.registry import Function
from ..source import Code, SourceWriter
from ..types import Json
from .runtime import Table

Spec = dict[str, Any]
"""A rule object as loaded: a dict (the loader's, which remembers file and line)."""


@dataclass(frozen=True, slots=True)
class Where:
    """Where a rule was written, for spec errors: file, line and rule id."""

    file: str | None
    line: int | None
    rule: str

    def inside(self, spec: Any, key: Any = None) -> "Where":
        """The location of ``spec`` (or of its ``key``) when the loader recorded one."""
        lines = getattr(spec, "key_lines", None)
        if key is not None and lines and key in lines:
            file, line = lines[key]
            return Where(file, line, self.rule)
        line = getattr(spec, "line", None)
        if line is not None:
            return Where(getattr(spec, "file", self.file), line, self.rule)
        return self

    def error(self, kind: type[SpecError], message: str, **extra: Any) -> SpecError:
        return kind(message, file=self.file, line=self.line, rule=self.rule, **extra)


def located(error: SpecError, where: Where) -> SpecError:
    """Fill in the file, line and rule id of an error raised below ``where`` that lacks them."""
    error.file = error.file or where.file
    error.line = error.line or where.line
    error.rule = error.rule or where.rule
    return error


def suggest(name: Any, known: Iterable[str]) -> str:
    """`` (did you mean x?)`` for a near miss, else nothing."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def plain(value: Json) -> Json:
    """Turn loader containers (which remember lines) into plain dicts, lists and tuples."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain(item) for item in value)
    return value


class Builder(Protocol):
    """What an op may ask of the rule compiler (``engine.codegen.RuleCompiler``) while it writes."""

    tables: dict[str, Table]
    functions: dict[str, Function]
    map_names: set[str]

    def rule(self, w: SourceWriter, spec: Any, scope: str, where: Where) -> Code: ...

    def path(self, w: SourceWriter, expression: Any, scope: str, where: Where) -> Code: ...

    def literal(self, w: SourceWriter, value: Json) -> Code: ...

    def template(self, w: SourceWriter, source: Any, scope: str, where: Where) -> Code: ...

    def field(self, w: SourceWriter, target: str, name: str, rule: Any, scope: str, where: Where) -> None: ...

    def add_to_list(self, w: SourceWriter, target: str, value: Code, *, flatten: bool) -> None: ...

    def on_list(self, key: str) -> bool: ...


class Reader(Protocol):
    """What an op may ask while ``engine.coverage`` works out the root fields a rule reads."""

    scope_unchanged: bool  # the rule has no source: its modifiers see the rule's own scope

    def rule(self, spec: Any) -> set[str]: ...

    def map(self, name: Any) -> set[str]: ...


class Op:
    """One key of a rule object, and the keys that only go with it."""

    key: ClassVar[str]
    schema: ClassVar[dict[str, Json]]  # every key this op owns -> its JSON schema
    requires: ClassVar[dict[str, list[str]]] = {}  # a key of this op -> the keys it needs
    on_list: ClassVar[bool] = False  # in an ``each`` rule: acts on the list, not on each element

    def reads(self, spec: Spec, reader: Reader) -> set[str]:
        """The root fields this op's keys in ``spec`` read (none unless the op says so)."""
        return set()


class Source(Op):
    """Gives the rule's value."""

    def write(self, c: Builder, w: SourceWriter, spec: Spec, scope: str, where: Where) -> Code:
        """Dispatch from the compiler; ``where`` is the rule's location."""
        return self.compile(c, w, spec[self.key], spec, scope, where.inside(spec, self.key))

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, scope: str,
                where: Where) -> Code:
        raise NotImplementedError


class Modifier(Op):
    """Rewrites the value in the variable ``target``, which is known not to be None."""

    def write(self, c: Builder, w: SourceWriter, spec: Spec, target: str, scope: str,
              where: Where) -> None:
        self.compile(c, w, spec[self.key], spec, target, scope, where.inside(spec, self.key))

    def compile(self, c: Builder, w: SourceWriter, value: Any, spec: Spec, target: str, scope: str,
                where: Where) -> None:
        raise NotImplementedError


class Guard(Op):
    """Opens ``if`` blocks that the rest of the rule runs inside (``when``, ``unless``)."""

    on_list = True

    def write(self, c: Builder, w: SourceWriter, spec: Spec, scope: str, where: Where,
              open_if: Callable[[str], None]) -> None:
        raise NotImplementedError


class Check(Op):
    """Runs on the value after the modifiers (``required``, then ``default``)."""

    on_list = True

    def active(self, value: Any) -> bool:
        """Whether the check does anything with this value (``required: false`` does not)."""
        return True

    def write(self, c: Builder, w: SourceWriter, value: Any, target: str, path: tuple) -> None:
        raise NotImplementedError

    def never_none(self, value: Any) -> bool:
        """Whether the value is known not to be None after this check ran."""
        return False


def at(path: tuple, *more: str) -> str:
    """Source for ``.at(...)``: prefix ``path`` (and the variables ``more``) to a run error's input path.

    Empty when there is nothing to prefix.
    """
    segments = [repr(segment) for segment in path] + list(more)
    return f".at({', '.join(segments)})" if segments else ""


def map_function(name: str) -> str:
    """The name a named map's function has in the generated namespace (``apply: x`` calls it)."""
    return f"map_{name}"
