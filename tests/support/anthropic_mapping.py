"""Whether the ``anthropic-chat`` mapping ships on this branch, for the tests of the Messages front.

The Anthropic front (issue 14) and its tests were written at the same time on two branches. The
tests that need the mapping skip, with one reason, until the mapping lands; they never fail for its
absence, so a branch with only the tests stays green. Once ``mappings/anthropic-chat.yaml`` exists
they run, under CI too (the mapping's absence is not a missing client: ``MAPPER_REQUIRE_CLIENTS``
does not turn this skip into a failure).

    pytestmark = requires_anthropic_chat
"""

from __future__ import annotations

import pytest

from mapper.engine.load import builtin_names

ANTHROPIC_CHAT = "anthropic-chat"
NOT_YET = "the anthropic-chat mapping is not on this branch yet"


def anthropic_chat_available() -> bool:
    """True when ``anthropic-chat`` is one of the built-in mappings."""
    return ANTHROPIC_CHAT in builtin_names()


requires_anthropic_chat = pytest.mark.skipif(not anthropic_chat_available(), reason=NOT_YET)
