"""engine/errors.py: one tree, stable codes, and run errors located while they unwind."""

from __future__ import annotations

import inspect

from mapper.engine import errors
from mapper.engine.errors import (ConfigError, ConversionError, MapperError, SSEDecodeError, SpecError,
                                  StreamError)


def test_every_error_class_lives_in_the_tree_with_a_unique_code() -> None:
    classes = [value for value in vars(errors).values()
               if inspect.isclass(value) and issubclass(value, MapperError)]
    for cls in classes:
        assert cls.__module__ == errors.__name__
        assert cls.__name__ in errors.__doc__ or cls.__name__ == "SpecErrors", cls
    codes = [cls.code for cls in classes if cls.__name__ not in ("SpecErrors", "MapperError", "SpecError")]
    assert len(codes) == len(set(codes))


def test_errors_defined_elsewhere_before_are_the_tree_s_own() -> None:
    from mapper.engine.proxy import ConfigError as proxy_config_error
    from mapper.engine.proxy.config import ConfigError as config_module_error
    from mapper.engine.sse import SSEDecodeError as sse_decode_error

    assert proxy_config_error is config_module_error is ConfigError
    assert sse_decode_error is SSEDecodeError
    assert issubclass(ConfigError, SpecError) and ConfigError.code == "M106"
    assert issubclass(SSEDecodeError, StreamError) and issubclass(SSEDecodeError, ValueError)


def test_config_error_location_names_the_command_without_a_file() -> None:
    assert str(ConfigError("no upstream")).startswith("mapper serve: M106 no upstream")
    assert str(ConfigError("bad", file="routes.yaml", line=3)).startswith("routes.yaml:3: M106")


def test_sse_decode_error_says_where_in_the_stream() -> None:
    error = SSEDecodeError("invalid UTF-8", 17)
    assert (error.reason, error.offset) == ("invalid UTF-8", 17)
    assert str(error) == "M302 invalid UTF-8 at byte 17 of the event stream"


def test_in_rule_keeps_the_innermost_rule() -> None:
    error = ConversionError("bad")
    assert error.in_rule("maps.inner").in_rule("request.fields.outer") is error
    assert error.rule == "maps.inner"


def test_at_prefixes_the_input_path_while_unwinding() -> None:
    error = ConversionError("bad").at("content", 0).at("input", 3)
    assert error.json_path == "input[3].content[0]"
    assert str(error) == "input[3].content[0]: M201 bad"
