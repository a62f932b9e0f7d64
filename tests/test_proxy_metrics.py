"""``GET /metrics`` (Prometheus text format) and ``GET /ready``, scraped from the real server.

The counters must move with what the proxy does: requests by route, status and stream, time to
first byte and upstream latency, tokens, active streams back to zero, refusals by status, upstream
errors by kind, and the response store's operations.
"""

from __future__ import annotations

from pathlib import Path
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mapper.engine.proxy import ProxyApp, ServeOptions, build_config
from mapper.engine.proxy.metrics import Metrics
from support.fake_upstream import FakeUpstream
from support.proxy_server import ProxyServer
from support.upstream_replies import error_reply

pytestmark = pytest.mark.anyio


def scrape(origin: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(origin + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_requests(fake: FakeUpstream, tmp_path: Path) -> None:
    config = build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url,
                                       store=f"sqlite:///{tmp_path}/r.sqlite3"), env={})
    with ProxyServer(config) as proxy:
        before = scrape(proxy.origin)
        url = proxy.origin + "/v1/responses"
        assert httpx.post(url, json={"model": "fake-model", "input": "hi"}, timeout=10).status_code == 200
        streamed = httpx.post(url, json={"model": "fake-model", "input": "hi", "stream": True},
                              timeout=10)
        assert streamed.status_code == 200
        assert httpx.post(url, content=b"{not json", timeout=10).status_code == 400
        fake.expect("/v1/chat/completions", error_reply(429, "slow down", "rate_limit_error"))
        assert httpx.post(url, json={"model": "fake-model", "input": "hi"}, timeout=10).status_code == 429
        after = scrape(proxy.origin)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("mapper_requests_total", route="default", status="200", stream="false") == 1
    assert moved("mapper_requests_total", route="default", status="200", stream="true") == 1
    assert moved("mapper_requests_total", route="-", status="400", stream="false") == 1
    assert moved("mapper_requests_total", route="default", status="429", stream="false") == 1
    assert moved("mapper_refusals_total", code="400") == 1
    assert moved("mapper_upstream_errors_total", kind="http_429") == 1
    assert moved("mapper_time_to_first_byte_seconds_count", stream="true") == 1
    assert moved("mapper_upstream_latency_seconds_count", route="default") == 3
    assert moved("mapper_tokens_total", route="default", kind="input") > 0
    assert moved("mapper_tokens_total", route="default", kind="output") > 0
    assert value(after, "mapper_active_streams") == 0
    assert moved("mapper_store_operations_total", operation="put", outcome="ok") == 2


def test_front_refusals_are_counted(fake: FakeUpstream) -> None:
    config = build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url), env={})
    with ProxyServer(config) as proxy:
        before = scrape(proxy.origin)
        response = httpx.get(proxy.origin + "/health", headers={"x-big": "a" * (70 << 10)},
                             timeout=10)
        assert response.status_code == 431
        after = scrape(proxy.origin)
    assert value(after, "mapper_refusals_total", code="431") - \
        value(before, "mapper_refusals_total", code="431") == 1


def test_ready_says_started_and_store_reachable(fake: FakeUpstream, tmp_path: Path) -> None:
    config = build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url,
                                       store=f"sqlite:///{tmp_path}/r.sqlite3"), env={})
    with ProxyServer(config) as proxy:
        response = httpx.get(proxy.origin + "/ready", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}
        assert response.headers["x-request-id"]


async def test_ready_is_503_before_start_up(fake: FakeUpstream) -> None:
    app = ProxyApp(build_config(ServeOptions(mapping="openai-chat", upstream=fake.base_url), env={}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client:
        response = await client.get("/ready")
    await app.aclose()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"


def test_one_registry_per_metrics_object() -> None:
    first, second = Metrics(), Metrics()
    first.observe("r", 200, False, 0.0, 0.1, None, None, {"input": 3, "output": 4})
    assert first.registry.get_sample_value("mapper_requests_total",
                                           {"route": "r", "status": "200", "stream": "false"}) == 1
    assert second.registry.get_sample_value("mapper_requests_total",
                                            {"route": "r", "status": "200", "stream": "false"}) is None
