"""Named functions for ``fn:`` rules, grouped by topic. Importing this package registers them all."""

from . import anthropic, chat, custom_tools, dispositions, errors, messages, output, providers, tool_names  # noqa: F401  (imported for their registrations)
from .registry import REGISTRY, Example, Function, describe, register

__all__ = ["REGISTRY", "Example", "Function", "describe", "register"]
