"""Writing Python source for generated functions, and turning it into functions once.

Everything that generates code (``engine.codegen`` and the ops in ``engine.ops`` for rules,
``engine.paths``, ``engine.expressions`` and ``engine.templates`` for what rules read) writes
statements through a ``SourceWriter`` and defines the result with ``define_function``. Keeping that
in one place keeps the generated code uniform: indentation only through blocks, fresh local names
from one counter, and a readable file name in tracebacks. A writer returns a ``Code`` for the value
it leaves behind, saying what is known about it, so no caller inspects generated names.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass(frozen=True, slots=True)
class Code:
    """A value in generated code: the Python expression that holds it, and what is known about it.

    Whoever writes the code says what it is, so no caller has to guess from a variable's name:
    ``nullable``: it may be None at run time; ``fresh``: it is a local variable the rule itself
    just wrote, so the caller may rebind it (a modifier's ``v = f(v)``) instead of copying it
    first; ``literal``: a Python literal such as ``'message'``, ``(0)`` or ``True``, which is never
    None and never a list.
    """

    expr: str
    nullable: bool = True
    fresh: bool = False
    literal: bool = False

    @property
    def is_none(self) -> bool:
        """The code is the constant ``None``: the rule never gives a value here."""
        return self.expr == "None"


NONE = Code("None")
"""A rule that gives no value (``drop:``, a ``reject:`` that raises)."""


class Names:
    """Fresh identifiers for one namespace: ``v1``, ``p2``, ``K3``..."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}{self.count}"


class SourceWriter:
    """Lines of one function body, with indentation and fresh local names."""

    def __init__(self, names: Names, namespace: dict[str, Any], level: int = 1,
                 getters: dict[str, str] | None = None,
                 known: dict[Any, tuple[str, int]] | None = None) -> None:
        self.names = names
        self.namespace = namespace
        self._lines: list[tuple[int, str]] = []  # (indentation level, statement)
        self.level = level
        # variables known to hold a dict, and the local their bound ``.get`` is in
        self.getters: dict[str, str] = getters if getters is not None else {}
        # values already read into a local (``remember``): key -> (variable, level it was bound at)
        self._known: dict[Any, tuple[str, int]] = known if known is not None else {}
        # whether the statements written may raise a run error (ConversionError): the writers of
        # such statements say so (``may_raise``), so that a rule that cannot fail is not wrapped
        # in a try that names it
        self.raises = False

    def __call__(self, line: str) -> None:
        self._lines.append((self.level, line))

    @property
    def lines(self) -> list[str]:
        """The statements written so far, indented."""
        return ["    " * level + line for level, line in self._lines]

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self(header)
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1
            self._forget_inner()

    @contextmanager
    def trying(self, *handlers: tuple[str, str]) -> Iterator[None]:
        """What follows inside ``try:``, then one ``except`` per ``(exception, statement)``."""
        with self.block("try:"):
            yield
        for exception, statement in handlers:
            with self.block(f"except {exception}:"):
                self(statement)

    @contextmanager
    def nested(self) -> Iterator[Callable[[str], None]]:
        """Open ``if`` headers one by one (``open_if(condition)``); all close at the end."""
        opened = [0]

        def open_if(condition: str) -> None:
            self(f"if {condition}:")
            self.level += 1
            opened[0] += 1

        try:
            yield open_if
        finally:
            self.level -= opened[0]
            self._forget_inner()

    def may_raise(self) -> None:
        """Note that what was just written may raise a run error (a ``raise``, a call that can fail)."""
        self.raises = True

    def remember(self, key: Any, variable: str) -> None:
        """Note that ``variable`` holds the value ``key`` names from here to the end of this block.

        ``variable`` must never be rebound afterwards; a later ``recall(key)`` in this block or one
        nested in it returns it, so that the value is not computed again.
        """
        self._known[key] = (variable, self.level)

    def recall(self, key: Any) -> str | None:
        """The variable ``remember`` noted for ``key``, if it is bound wherever the next line runs."""
        known = self._known.get(key)
        return known[0] if known is not None and known[1] <= self.level else None

    def _forget_inner(self) -> None:
        # a variable first bound inside a block that has closed may be unbound after it
        if self._known:
            for key in [key for key, (_, level) in self._known.items() if level > self.level]:
                del self._known[key]

    def var(self, hint: str = "v") -> str:
        return self.names.fresh(hint)

    def constant(self, value: Any, hint: str = "K") -> str:
        """A name in the namespace bound to ``value``, for what cannot be written as a literal."""
        name = self.names.fresh(hint.upper())
        self.namespace[name] = value
        return name

    def child(self) -> "SourceWriter":
        """A writer at this one's level for lines to ``adopt`` later (or to drop, on a spec error)."""
        return SourceWriter(self.names, self.namespace, self.level, self.getters, self._known)

    def adopt(self, child: "SourceWriter", *handlers: tuple[str, str]) -> None:
        """Add ``child``'s lines; inside ``try:`` with ``handlers`` when they may raise a run error.

        A ``try`` costs nothing at run time until something raises, but it is a block (Python
        allows 20 nested ones) and four lines to read, so code that cannot raise goes without.
        """
        if handlers and child.raises:
            self("try:")
            self._lines.extend((level + 1, line) for level, line in child._lines)
            for exception, statement in handlers:
                with self.block(f"except {exception}:"):
                    self(statement)
        else:
            self._lines.extend(child._lines)
        self.raises = self.raises or child.raises


def define_function(namespace: dict[str, Any], name: str, body: list[str], *,
                    arguments: str = "scope, ctx", filename: str = "<mapper>") -> tuple[Callable[..., Any], str]:
    """Compile ``def name(arguments):`` with ``body`` (already indented) into ``namespace``.

    Returns the function and its source. Raises ``SyntaxError`` as ``compile`` does (for example
    past Python's limit of 20 statically nested blocks).
    """
    source = f"def {name}({arguments}):\n" + "\n".join(body) + "\n"
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - generated from a validated spec
    return namespace[name], source
