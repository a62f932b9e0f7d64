"""Where the real clients live, and how a test runs them or says why it cannot.

The npm clients are pinned in ``tests/clients/package.json`` (with its lock file) and installed by
``npm ci --prefix tests/clients``; the Python ones are pinned in pyproject.toml's ``test`` extra.
On a developer's machine a missing client skips its tests with the command that installs it; under CI
(``MAPPER_REQUIRE_CLIENTS=1``, set by ``.ci/run``) it fails them, so no client goes untested
there. A client installed at another version than the pin counts as missing: the tests claim the
pinned versions work.

Node clients run as small driver scripts beside the lock file (``node tests/clients/<driver>.mjs
<scenario> <base URL>``), which print one JSON document: ``{"result": ...}`` or ``{"error": ...}``,
each with ``exchanges``, the bodies the client sent and the statuses it got back.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

import pytest

from .mapper_serve import MapperServe

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
PYPROJECT = CLIENTS.parent.parent / "pyproject.toml"
NPM_INSTALL = "npm ci --prefix tests/clients"
PIP_INSTALL = "pip install -e '.[test]'"
NODE_TIMEOUT = 60.0  # seconds for one driver run; each makes a handful of requests to 127.0.0.1

Json = Any


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when the clients are required (CI)."""
    if os.environ.get("MAPPER_REQUIRE_CLIENTS") == "1":
        pytest.fail(f"{reason} (MAPPER_REQUIRE_CLIENTS=1: the real clients must run here)")
    pytest.skip(reason)


def pinned_version(package: str) -> str:
    """The version ``tests/clients/package.json`` pins for an npm package."""
    return json.loads((CLIENTS / "package.json").read_text())["dependencies"][package]


def require_npm_package(package: str) -> Path:
    """The installed package's folder, at its pinned version; otherwise skip (or fail under CI)."""
    if shutil.which("node") is None:
        unavailable(f"node is not installed, so {package} cannot run: install Node.js and npm, then {NPM_INSTALL}")
    folder = CLIENTS / "node_modules" / package
    pinned = pinned_version(package)
    if not (folder / "package.json").is_file():
        unavailable(f"{package} {pinned} is not installed: run {NPM_INSTALL}")
    installed = json.loads((folder / "package.json").read_text())["version"]
    if installed != pinned:
        unavailable(f"{package} {installed} is installed but {pinned} is pinned: run {NPM_INSTALL}")
    return folder


def require_python_package(module: str, distribution: str) -> Any:
    """Import ``module`` at the version the ``test`` extra pins for ``distribution``, or skip (fail under CI)."""
    _forget_checkout_alias(module)
    extra = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["test"]
    pinned = next(entry.split("==", 1)[1] for entry in extra if entry.startswith(f"{distribution}=="))
    if importlib.util.find_spec(module) is None:
        unavailable(f"{distribution} {pinned} is not installed: run {PIP_INSTALL}")
    installed = importlib.metadata.version(distribution)
    if installed != pinned:
        unavailable(f"{distribution} {installed} is installed but {pinned} is pinned: run {PIP_INSTALL}")
    return importlib.import_module(module)


def _forget_checkout_alias(module: str) -> None:
    """Drop ``sys.modules[module]`` when it is this checkout's root package under its folder's name.

    The repository root is a package (``__init__.py``), and pytest imports it under the name of the
    folder it is checked out in (``Package.setup``); in a folder named like a client (a worktree
    called ``agentscope``) that name would then be this repository rather than the installed client.
    """
    loaded = sys.modules.get(module)
    if loaded is not None and Path(getattr(loaded, "__file__", None) or "").resolve() == PYPROJECT.with_name(
            "__init__.py"):
        del sys.modules[module]


def run_driver(driver: str, scenario: str, base_url: str, timeout: float = NODE_TIMEOUT) -> Json:
    """Run ``tests/clients/<driver>`` once; returns its JSON document (``result`` or ``error``)."""
    command = [shutil.which("node") or "node", str(CLIENTS / driver), scenario, base_url]
    done = subprocess.run(command, cwd=CLIENTS, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "NO_COLOR": "1"})
    try:
        document = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise AssertionError(f"{driver} {scenario} printed no JSON (exit {done.returncode}):\n"
                             f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}") from None
    document["stderr"] = done.stderr
    return document


def driver_result(document: Json) -> Json:
    """The driver's result; a client-side error fails with the refused request and mapper's answer."""
    if "error" not in document:
        return document["result"]
    failed = [exchange for exchange in document["exchanges"] if exchange["status"] >= 400]
    shown = "\n".join(f"{exchange['status']} {exchange['url']}\n  sent: {json.dumps(exchange['body'])[:3000]}\n"
                      f"  answer: {exchange.get('error')}" for exchange in failed)
    raise AssertionError(f"the client failed: {document['error'][:2000]}\n{shown}")


def serve_on_defaults(upstream_url: str, folder: Path, store: bool = False,
                      mapping: str = "openai-chat") -> MapperServe:
    """``mapper serve --mapping openai-chat`` on its defaults, in front of ``upstream_url`` (not started).

    No ``--option`` and no ``--overlay``: the claim is that the clients work as a user starts mapper.
    With ``store``, a SQLite response store in ``folder`` (``--store``). ``mapping="openai-responses"``
    is the reverse direction: chat clients in front of a Responses upstream.
    """
    args = ["--mapping", mapping, "--upstream", upstream_url]
    if store:
        args += ["--store", f"sqlite:///{folder / 'responses.sqlite3'}"]
    return MapperServe(args, folder)

