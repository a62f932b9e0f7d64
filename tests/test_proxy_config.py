"""``mapper serve`` configuration (engine/proxy/config.py, routes.py): flags, routes files, errors.

Every mistake must stop the server before it listens, located (file and line) and all at once,
and no error may echo a key.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mapper.cli import main
from mapper.engine.errors import SpecError, SpecErrors
from mapper.engine.proxy import ConfigError, ServeOptions, build_config
from mapper.engine.proxy.upstream import Timeouts

OVERLAY = """\
format: mapper/1
id: max-completion-tokens-test
version: 1.0.0
extends: {mapping: openai-chat, version: "^1"}
request:
  fields:
    max_tokens: null
    max_completion_tokens: {from: max_output_tokens, as: integer}
"""

ROUTES = """\
format: mapper-routes/1
proxy_keys_env: PROXY_KEYS
timeouts: {read: 120}
routes:
  deepseek:
    match: "^deepseek-"
    upstream: https://api.deepseek.com
    mapping: openai-chat
    api_key_env: DEEPSEEK_KEY
    timeouts: {idle: 30}
  local:
    match: "^(gpt-4o|llama)"
    upstream: http://127.0.0.1:11434
    mapping: openai-chat.yaml
    overlays: [overlay.yaml]
    options: {incomplete_as_completed: true}
    model: qwen2.5:7b
    models: [gpt-4o, llama3]
  default:
    upstream: http://127.0.0.1:8000/v1/v1
    mapping: openai-chat
"""

ENV = {"PROXY_KEYS": "pk-one, pk-two,,", "DEEPSEEK_KEY": "sk-deepseek-secret-0001"}


def _write(tmp_path: Path, text: str, name: str = "routes.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _config(path: Path, env: dict[str, str] = ENV, **flags):
    return build_config(ServeOptions(config=str(path), **flags), env=env)


def test_a_routes_file_resolves_routes_keys_timeouts_and_mappings(tmp_path: Path) -> None:
    (tmp_path / "overlay.yaml").write_text(OVERLAY)
    config = _config(_write(tmp_path, ROUTES), connect_timeout=3)
    deepseek, local, default = config.router.routes
    assert config.proxy_keys == ("pk-one", "pk-two")
    assert config.held_keys
    assert deepseek.api_key == "sk-deepseek-secret-0001"
    assert "sk-deepseek" not in repr(deepseek)  # keys stay out of reprs (and so of tracebacks)
    assert deepseek.url("deepseek-chat") == "https://api.deepseek.com/v1/chat/completions"
    # built-in defaults < flags < the file's timeouts < the route's
    assert deepseek.timeouts == Timeouts(connect=3, read=120, idle=30)
    assert default.timeouts == Timeouts(connect=3, read=120, idle=300)
    assert default.upstream == "http://127.0.0.1:8000/v1"
    assert local.model == "qwen2.5:7b" and local.models == ("gpt-4o", "llama3")
    assert local.mapping.options["incomplete_as_completed"] is True
    converted = local.mapping.convert_request({"model": "gpt-4o", "input": "x", "max_output_tokens": 5})
    assert converted["max_completion_tokens"] == 5 and "max_tokens" not in converted
    assert set(config.secrets()) == {"pk-one", "pk-two", "sk-deepseek-secret-0001"}


def test_the_first_matching_route_wins_and_the_default_takes_the_rest(tmp_path: Path) -> None:
    (tmp_path / "overlay.yaml").write_text(OVERLAY)
    router = _config(_write(tmp_path, ROUTES)).router
    assert router.paths == {"/v1/responses"}
    pick = lambda model: router.match("/v1/responses", model).name  # noqa: E731
    assert pick("deepseek-chat") == "deepseek"
    assert pick("gpt-4o-mini") == "local"
    assert pick("llama3") == "local"
    assert pick("my-deepseek-chat") == "default"  # ^ anchors: searched, not a substring test
    assert router.match("/v1/chat/completions", "gpt-4o") is None


def test_the_mapping_options_place_the_endpoint_and_the_key_header(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
format: mapper-routes/1
routes:
  azure:
    upstream: https://r.openai.azure.com/openai
    mapping: openai-chat
    overlays: [azure-openai]
    options: {upstream_path: "/deployments/{model}/chat/completions", upstream_query: api-version=2024-10-21}
    api_key_env: AZURE_KEY
""")
    (route,) = _config(path, env={"AZURE_KEY": "az-key"}).router.routes
    assert route.url("gpt 4o") == ("https://r.openai.azure.com/openai/deployments/gpt%204o/chat/completions"
                                   "?api-version=2024-10-21")
    assert route.url_template == ("https://r.openai.azure.com/openai/deployments/{model}/chat/completions"
                                  "?api-version=2024-10-21")
    assert route.models_url == "https://r.openai.azure.com/openai/models?api-version=2024-10-21"
    assert route.key_headers("az-key") == {"api-key": "az-key"}
    with pytest.raises(ConfigError, match="option upstream_path must be a path starting with '/'"):
        build_config(ServeOptions(mapping="openai-chat", upstream="http://h",
                                  options={"upstream_path": "chat"}), env={})


def test_a_json_routes_file_works_too(tmp_path: Path) -> None:
    document = {"format": "mapper-routes/1",
                "routes": {"only": {"match": "x", "upstream": "http://127.0.0.1:1", "mapping": "openai-chat"}}}
    config = _config(_write(tmp_path, json.dumps(document, indent=1), "routes.json"))
    assert [route.name for route in config.router.routes] == ["only"]
    assert not config.held_keys


def test_schema_errors_are_located_and_all_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
format: mapper-routes/1
routes:
  a:
    upstream: http://127.0.0.1:1
    mapping: openai-chat
    api_key: sk-should-never-be-here
  b:
    mapping: openai-chat
    timeouts: {read: soon}
  c:
    upstream: http://127.0.0.1:1
    mapping: openai-chat
    api_key_env: sk-pasted-key-instead-of-a-name
""")
    with pytest.raises(SpecErrors) as caught:
        _config(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"{path}:6: M106 routes.a.api_key: unknown key 'api_key' (keys are never written")
    assert lines[1].startswith(f"{path}:7: M106 routes.b: 'upstream' is a required property")
    assert lines[2].startswith(f"{path}:9: M106 routes.b.timeouts.read: 'soon' is not of type 'number'")
    assert lines[3].startswith(f"{path}:13: M106 routes.c.api_key_env: takes the NAME of an environment variable")
    assert "sk-should" not in str(caught.value)
    assert "sk-pasted" not in str(caught.value)


def test_route_problems_are_located(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
format: mapper-routes/1
routes:
  catch-all:
    upstream: http://127.0.0.1:1
    mapping: openai-chat
  shadowed:
    match: never-reached
    upstream: http://127.0.0.1:1
    mapping: openai-chat
  also-shadowed:
    match: never-reached-either
    upstream: http://127.0.0.1:1
    mapping: openai-chat
  bad-regex:
    match: "gpt-(4"
    upstream: http://127.0.0.1:1
    mapping: openai-chat
  no-mapping:
    upstream: http://127.0.0.1:1
    mapping: no-such-mapping
  no-key:
    upstream: http://127.0.0.1:1
    mapping: openai-chat
    api_key_env: MISSING_KEY
""")
    with pytest.raises(SpecErrors) as caught:
        _config(path)
    text = str(caught.value)
    assert (f"{path}:3: M106 routes.catch-all: a route without `match` is the default route for /v1/responses "
            "and must be the last of its path (routes.shadowed follows it)") in text
    assert f"{path}:15: M106 routes.bad-regex.match: not a regular expression: missing )" in text
    assert f"{path}:20: M106 routes.no-mapping.mapping: cannot load 'no-such-mapping'" in text
    assert f"{path}:24: M106 routes.no-key.api_key_env: $MISSING_KEY is not set or empty" in text
    assert len(caught.value.errors) == 4


def test_a_missing_file_and_bad_yaml_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such routes file"):
        _config(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match=r"routes.yaml:3: M100 YAML syntax"):
        _config(_write(tmp_path, "format: mapper-routes/1\nroutes: [\n"))


def test_flags_make_one_default_route(tmp_path: Path) -> None:
    config = build_config(ServeOptions(mapping="openai-chat", upstream="http://127.0.0.1:11434",
                                       api_key_env="UP_KEY", proxy_key_env="PROXY_KEYS",
                                       read_timeout=5, options={"incomplete_as_completed": True}),
                          env={"UP_KEY": "sk-up", "PROXY_KEYS": "pk"})
    (route,) = config.router.routes
    assert (route.name, route.pattern, route.api_key) == ("default", None, "sk-up")
    assert route.url("m") == "http://127.0.0.1:11434/v1/chat/completions"
    assert route.timeouts.read == 5
    assert route.mapping.options["incomplete_as_completed"] is True
    assert config.proxy_keys == ("pk",)


@pytest.mark.parametrize("options, env, message", [
    (dict(upstream="http://h"), {}, "give --mapping and --upstream"),
    (dict(mapping="openai-chat", upstream="h:1"), {}, "--upstream: not an http"),
    (dict(mapping="openai-chat", upstream="http://h", api_key_env="UNSET"), {},
     "--api-key-env: $UNSET is not set or empty"),
    (dict(mapping="openai-chat", upstream="http://h", proxy_key_env="PK"), {"PK": " , "},
     "the proxy keys variable holds no key"),
    (dict(mapping="openai-chat", upstream="http://h", config="r.yaml"), {}, "--config cannot be combined"),
    (dict(mapping="openai-chat", upstream="http://h", transport="curl"), {}, "unknown upstream transport"),
])
def test_flag_mistakes_are_config_errors(options: dict, env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(ServeOptions(**options), env=env)
    assert message in str(caught.value)
    assert str(caught.value).startswith("mapper serve: M106 ")


def test_a_key_pasted_instead_of_a_variable_name_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(ServeOptions(mapping="openai-chat", upstream="http://h",
                                  api_key_env="sk-proj-abc123secret"), env={})
    assert "NAME of an environment variable" in str(caught.value)
    assert "abc123" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        build_config(ServeOptions(mapping="openai-chat", upstream="http://h",
                                  api_key_env="abcdef0123456789abcdef"), env={})
    assert "the variable it names is not set" in str(caught.value)
    assert "abcdef0123" not in str(caught.value)


def test_options_round_trip_to_workers() -> None:
    options = ServeOptions(mapping="openai-chat", overlays=("a", "b"), options={"x": 1},
                           upstream="http://h", workers=3, read_timeout=2.5)
    assert ServeOptions.from_json(options.to_json()) == options


# -- the command line -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["serve"], "give --mapping and --upstream, or --config"),
    (["serve", "--mapping", "openai-chat"], "give --mapping and --upstream, or --config"),
    (["serve", "--config", "{routes}", "--upstream", "http://h"], "--config cannot be combined"),
    (["serve", "--config", "{routes}", "--overlay", "x"], "--config cannot be combined"),
    (["serve", "-m", "openai-chat", "--upstream", "http://h", "--workers", "0"], "--workers"),
])
def test_serve_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    routes = _write(tmp_path, ROUTES)
    result = CliRunner().invoke(main, [arg.format(routes=routes) for arg in args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_serve_configuration_errors_exit_1_before_listening(tmp_path: Path) -> None:
    path = _write(tmp_path, "format: mapper-routes/1\nroutes:\n  a: {upstream: http://h, mapping: nope}\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 1
    assert f"Error: {path}:3: M106 routes.a.mapping: cannot load 'nope'" in result.output
    result = CliRunner().invoke(main, ["serve", "-m", "openai-chat", "--upstream", "http://h",
                                       "--api-key-env", "MAPPER_TEST_UNSET_VARIABLE"], env={})
    assert result.exit_code == 1
    assert "$MAPPER_TEST_UNSET_VARIABLE is not set" in result.output


@pytest.mark.parametrize("text", [
    "key sk-abcdef123456 leaked", "KEY SK-ABCDEF123456 LEAKED", "Authorization: Bearer abc.def",
    "authorization: BEARER xyz", "a known-secret-value here",
])
def test_redactor_removes_every_key_shape(text: str) -> None:
    from mapper.engine.proxy.logs import REDACTED, Redactor

    redacted = Redactor(["known-secret-value"]).text(text)
    assert REDACTED in redacted
    for secret in ("abcdef123456", "ABCDEF123456", "abc.def", "xyz", "known-secret-value"):
        assert secret not in redacted


@pytest.mark.parametrize("key", ["k", "ab", "backend", "1234567"])
def test_a_short_key_never_mangles_text(key: str) -> None:
    from mapper.engine.proxy.logs import Redactor

    # too short to tell from a word: "k" must not turn "backend" into "bac[REDACTED]end"
    text = "backend crashed: 1234567 tokens, ab ok"
    assert Redactor().with_secret(key).text(text) == text
    assert Redactor([key]).text(text) == text


def test_a_key_is_redacted_only_as_a_whole_token() -> None:
    from mapper.engine.proxy.logs import REDACTED, Redactor

    redactor = Redactor(["team-key-0001"])
    assert redactor.text("key=team-key-0001, bad") == f"key={REDACTED}, bad"
    assert redactor.text('{"k":"team-key-0001"}') == f'{{"k":"{REDACTED}"}}'
    # inside a longer token it is another string, not this key
    assert redactor.text("team-key-00012 x-team-key-0001") == "team-key-00012 x-team-key-0001"


def test_redactor_leaves_clean_text_alone() -> None:
    from mapper.engine.proxy.logs import Redactor

    line = '{"event":"request","route":"default","status":200,"tokens":{"input":3}}'
    assert Redactor(["sk-held"]).text(line) == line


# -- the response store ---------------------------------------------------------------------------

STORE_ROUTES = """\
format: mapper-routes/1
store: {store}
routes:
  default: {{upstream: http://127.0.0.1:1, mapping: openai-chat}}
"""


def test_the_routes_files_store(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    path = _write(tmp_path, STORE_ROUTES.format(store="true"))
    assert _config(path, env).store.target == str(tmp_path / "data/mapper/responses.sqlite3")
    assert _config(_write(tmp_path, STORE_ROUTES.format(store="false")), env).store is None
    path = _write(tmp_path, STORE_ROUTES.format(store="sqlite:///kept/r.sqlite3"))
    config = _config(path, env, store_ttl=60)
    assert (config.store.target, config.store.ttl) == (str(tmp_path.resolve() / "kept/r.sqlite3"), 60)
    # the flag wins over the file, and applies its TTL to its own URL
    config = _config(path, env, store="sqlite:////elsewhere/r.sqlite3", store_ttl=5)
    assert (config.store.target, config.store.ttl) == ("/elsewhere/r.sqlite3", 5)


@pytest.mark.parametrize("store, message", [
    ("postgres://db/mapper", "2: M106 store: unknown store 'postgres://db/mapper'"),
    ("'redis://:hunter2-pass@cache:6379/0'", "2: M106 store: the URL holds a password, and secrets "
                                             "are never written in the routes file"),
    ("sqlite:///r.sqlite3?ttl=never", "2: M106 store: ?ttl= takes seconds"),
    ("5", "2: M106 store: 5 is not of type 'string', 'boolean'"),
])
def test_a_bad_store_in_the_routes_file_is_located(tmp_path: Path, store: str, message: str) -> None:
    path = _write(tmp_path, STORE_ROUTES.format(store=store))
    with pytest.raises(ConfigError) as caught:
        _config(path, {})
    assert str(caught.value).startswith(f"{path}:{message}")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("options, message", [
    (dict(store_ttl=5), "--store-ttl needs a response store"),
    (dict(store="ftp://h/x"), "--store: unknown store 'ftp://h/x'"),
    (dict(store="sqlite:///x?ttl=5", store_ttl=5), "--store: the store's TTL is given twice"),
])
def test_store_flag_mistakes(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(ServeOptions(mapping="openai-chat", upstream="http://h", **options), env={})
    assert message in str(caught.value)


def test_a_redis_password_is_a_secret_to_redact() -> None:
    options = ServeOptions(mapping="openai-chat", upstream="http://h",
                           store="redis://:hunter2-pass@cache:6379/0", store_ttl=30)
    assert ServeOptions.from_json(options.to_json()) == options
    config = build_config(options, env={})
    assert "hunter2-pass" in config.secrets()
    assert config.store.display == "redis://cache:6379/0"


def test_the_store_flag_alone_means_the_default_file(tmp_path: Path, monkeypatch) -> None:
    seen: list[ServeOptions] = []
    monkeypatch.setattr("mapper.engine.proxy.server.serve", seen.append)
    base = ["serve", "-m", "openai-chat", "--upstream", "http://h"]
    for args, env, expected in [
        (["--store", "--port", "9000"], {}, "sqlite://"),
        (["--store=redis://h:6379/1", "--store-ttl", "60"], {}, "redis://h:6379/1"),
        ([], {"MAPPER_STORE": "sqlite:///from-env.sqlite3"}, "sqlite:///from-env.sqlite3"),
        ([], {}, None),
    ]:
        result = CliRunner().invoke(main, base + args, env={"MAPPER_STORE": None, **env})
        assert result.exit_code == 0, result.output
        assert seen.pop().store == expected
    config = build_config(ServeOptions(mapping="openai-chat", upstream="http://h", store="sqlite://"),
                          env={"XDG_DATA_HOME": str(tmp_path)})
    assert config.store.target == str(tmp_path / "mapper/responses.sqlite3")


def test_a_store_that_cannot_open_stops_serve_before_listening(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("mapper.engine.proxy.server.configure_logging", lambda redactor: None)
    (tmp_path / "a-file").write_text("")
    result = CliRunner().invoke(main, ["serve", "-m", "openai-chat", "--upstream", "http://h",
                                       "--store", f"sqlite:///{tmp_path}/a-file/r.sqlite3"])
    assert result.exit_code == 1
    assert f"Error: M501 the SQLite store {tmp_path}/a-file/r.sqlite3:" in result.output
