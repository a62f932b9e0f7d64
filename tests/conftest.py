"""Put ``tests/`` on ``sys.path`` so test modules can ``import support.<module>``; shared fixtures.

pytest runs with ``--import-mode=importlib`` and the repository root is itself the ``mapper``
package, so ``tests`` is not importable as a package of its own.
"""

import os
import socket
import sys
from pathlib import Path

_TESTS_DIR = str(Path(__file__).parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

# the key mapper signs thinking blocks with (engine/signing.py): fixed, so that signatures in
# fixtures and snapshots are the same every run; mapper serve subprocesses inherit it
os.environ["MAPPER_SIGNING_KEY"] = "mapper-test-signing-key"


import pytest  # noqa: E402 - after the path is set, so that support imports resolve

from support.fake_upstream import FakeUpstream  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection the test (a real client, its telemetry) opens beyond 127.0.0.1.

    For the real-client tests, whose clients may reach out on their own; a module opts in with
    ``pytestmark = pytest.mark.usefixtures("only_loopback")``.
    """
    for method in ("connect", "connect_ex"):
        original = getattr(socket.socket, method)

        def guarded(sock: socket.socket, address, _original=original):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
                raise AssertionError(f"a connection beyond 127.0.0.1 was attempted: {address!r}")
            return _original(sock, address)

        monkeypatch.setattr(socket.socket, method, guarded)


@pytest.fixture(scope="module")
def upstream_server():
    """A fake chat upstream shared by a module's tests (``fake`` resets it before each)."""
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def fake(upstream_server: FakeUpstream) -> FakeUpstream:
    upstream_server.reset()
    return upstream_server


@pytest.fixture
def sdk(proxy):
    """The official ``anthropic`` SDK through the module's ``proxy`` fixture (a ``ProxyServer``),
    and the transport that records its exchanges (``support.anthropic_e2e``)."""
    from support.anthropic_e2e import anthropic_sdk

    with anthropic_sdk(proxy) as pair:
        yield pair


@pytest.fixture
def client(sdk):
    """``sdk``'s client; a module with a ``client`` of its own (another SDK) overrides it."""
    return sdk[0]


@pytest.fixture
def wire(sdk):
    """``sdk``'s recording transport: what crossed the wire, bodies included."""
    return sdk[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server for the session.

    Without one installed, the Redis tests skip on a developer's machine (the README's test
    command must work on a fresh clone) and fail under CI, where ``.ci/run`` installs it and sets
    ``MAPPER_REQUIRE_REDIS=1``, so the Redis store is never left untested there.
    """
    from support.redis_server import RedisServer

    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except RuntimeError as error:
        if os.environ.get("MAPPER_REQUIRE_REDIS") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mapper_with_store(upstream_server: FakeUpstream, tmp_path_factory):
    """``mapper serve --store`` on its defaults, a real process in front of the module's upstream.

    For the real-client tests (tests/test_client_*.py); a module that overrides ``upstream_server``
    (Codex's scripted model) gets the server in front of its own.
    """
    from support.real_clients import serve_on_defaults

    with serve_on_defaults(upstream_server.base_url, tmp_path_factory.mktemp("mapper"), store=True) as server:
        yield server


@pytest.fixture(scope="module")
def mapper_without_store(upstream_server: FakeUpstream, tmp_path_factory):
    """``mapper serve`` on its defaults, without a response store (see ``mapper_with_store``)."""
    from support.real_clients import serve_on_defaults

    with serve_on_defaults(upstream_server.base_url, tmp_path_factory.mktemp("mapper")) as server:
        yield server


@pytest.fixture(scope="module")
def mapper_to_responses(upstream_server: FakeUpstream, tmp_path_factory):
    """``mapper serve --mapping openai-responses`` on its defaults: chat clients, a Responses upstream.

    The reverse direction of ``mapper_without_store``, for chat-only clients (AgentScope); the module
    overrides ``upstream_server`` with one that answers only the Responses API (``no_chat_endpoint``),
    so every answer its client gets has been converted.
    """
    from support.real_clients import serve_on_defaults

    folder = tmp_path_factory.mktemp("mapper")
    with serve_on_defaults(upstream_server.base_url, folder, mapping="openai-responses") as server:
        yield server
