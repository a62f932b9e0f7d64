"""Tests for engine/sse.py: SSE framing in both directions.

Every decoding test also checks that the same bytes, split at every offset, decode to the same
frames: an upstream may cut a chunk anywhere, including inside a UTF-8 character or between the
CR and LF of one line ending.
"""

from __future__ import annotations

import asyncio
import doctest
from collections.abc import AsyncIterator, Iterable
from types import MappingProxyType

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.engine import sse
from mapper.engine.sse import (
    DONE,
    Frame,
    SSEDecodeError,
    SSEDecoder,
    aiter_frames,
    encode_comment,
    encode_data,
    encode_event,
)

# --- helpers -------------------------------------------------------------------------------------


def decode_pieces(pieces: Iterable[bytes], **options: int) -> list[Frame]:
    decoder = SSEDecoder(**options)
    frames: list[Frame] = []
    for piece in pieces:
        frames += decoder.feed(piece)
    return frames + decoder.close()


def decode(stream: bytes, **options: int) -> list[Frame]:
    """Decode ``stream`` in one piece, and check every two-piece split and byte-by-byte agree."""
    expected = decode_pieces([stream], **options)
    for cut in range(len(stream) + 1):
        assert decode_pieces([stream[:cut], stream[cut:]], **options) == expected, cut
    one_byte_each = [stream[i : i + 1] for i in range(len(stream))]
    assert decode_pieces(one_byte_each, **options) == expected
    return expected


def decode_error(stream: bytes, **options: int) -> SSEDecodeError:
    """Check ``stream`` fails to decode however it is split; return the one-piece error.

    Invalid UTF-8 is reported at the same offset for every split; an oversized frame is reported
    wherever the limit was crossed, which depends on the split.
    """
    with pytest.raises(SSEDecodeError) as one_piece:
        decode_pieces([stream], **options)
    for cut in range(len(stream) + 1):
        with pytest.raises(SSEDecodeError) as split:
            decode_pieces([stream[:cut], stream[cut:]], **options)
        assert split.value.reason == one_piece.value.reason
        if split.value.reason == "invalid UTF-8":
            assert split.value.offset == one_piece.value.offset, cut
    return one_piece.value


# --- fields and lines ----------------------------------------------------------------------------


def test_event_and_data_lines() -> None:
    assert decode(b"event: ping\ndata: {}\n\n") == [Frame("ping", "{}")]


def test_data_without_event_has_no_event_name() -> None:
    assert decode(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [
        Frame(None, '{"a":1}'),
        Frame(None, "[DONE]"),
    ]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending(ending: bytes) -> None:
    lines = [b"event: a", b"data: 1", b"data: 2", b"", b": note", b"data: 3", b"", b""]
    assert decode(ending.join(lines)) == [Frame("a", "1\n2"), Frame(None, "3")]


def test_mixed_line_endings_in_one_stream() -> None:
    stream = b"data: 1\r\ndata: 2\rdata: 3\n\r\ndata: 4\r\r"
    assert decode(stream) == [Frame(None, "1\n2\n3"), Frame(None, "4")]


def test_multi_line_data_is_joined_with_newline() -> None:
    assert decode(b"data: one\ndata:\ndata: three\n\n") == [Frame(None, "one\n\nthree")]


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"data: x", "x"),
        (b"data:x", "x"),
        (b"data:  x", " x"),  # only the first space after the colon is dropped
        (b"data: ", ""),
        (b"data:", ""),
        (b"data", ""),  # no colon: the whole line is the field name, with an empty value
        (b"data: a: b", "a: b"),
    ],
)
def test_data_value_spelling(line: bytes, data: str) -> None:
    assert decode(line + b"\n\n") == [Frame(None, data)]


def test_comment_lines_are_ignored() -> None:
    assert decode(b": keep-alive\n:\ndata: x\n: inside\n\n") == [Frame(None, "x")]


def test_unknown_fields_are_ignored() -> None:
    stream = b"foo: bar\nData: no\nevent : spaced name\ndata: x\n\n"
    assert decode(stream) == [Frame(None, "x")]


def test_event_without_colon_or_value_means_no_name() -> None:
    assert decode(b"event\ndata: x\n\nevent:\ndata: y\n\n") == [Frame(None, "x"), Frame(None, "y")]


def test_frames_without_data_are_not_dispatched() -> None:
    assert decode(b"\n\n\n") == []
    assert decode(b"event: lonely\n\n") == []
    assert decode(b"id: 1\nretry: 5\n\n: only a comment\n\n") == []


def test_blank_line_resets_event_name() -> None:
    assert decode(b"event: stale\n\ndata: x\n\n") == [Frame(None, "x")]


def test_id_is_sticky_like_last_event_id() -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 2\n\ndata: d\n\n"
    assert decode(stream) == [
        Frame(None, "a", id="1"),
        Frame(None, "b", id="1"),
        Frame(None, "c", id=None),  # an empty id clears it
        Frame(None, "d", id="2"),  # set by a frame that was never dispatched
    ]


def test_id_containing_nul_is_ignored() -> None:
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        Frame(None, "a", id="1"),
        Frame(None, "b", id="1"),
    ]


@pytest.mark.parametrize(
    ("value", "retry"),
    [
        (b"3000", 3000),
        (b"0", 0),
        (b"+5", None),
        (b"-1", None),
        (b"1.5", None),
        (b"1_0", None),
        (b"", None),
        ("\u0665".encode(), None),  # ARABIC-INDIC DIGIT FIVE: a digit to str.isdigit, not to SSE
        (b"9" * 5000, None),
    ],
)
def test_retry_takes_ascii_digits_only(value: bytes, retry: int | None) -> None:
    assert decode_pieces([b"retry: " + value + b"\ndata: x\n\n"]) == [Frame(None, "x", retry=retry)]


def test_retry_belongs_to_its_frame_only() -> None:
    assert decode(b"retry: 10\ndata: a\n\ndata: b\n\n") == [
        Frame(None, "a", retry=10),
        Frame(None, "b"),
    ]


def test_text_that_str_splitlines_would_split_is_kept() -> None:
    # Only CR and LF end SSE lines; VT, FF, NEL and U+2028 are ordinary characters.
    value = "a\x0bb\x0cc\x1cd\x85e\u2028f\u2029g"
    assert decode(b"data: " + value.encode() + b"\n\n") == [Frame(None, value)]


def test_multibyte_utf8_survives_every_split() -> None:
    stream = "event: é\ndata: 日本語 é 🙂\n\n".encode()
    assert decode(stream) == [Frame("é", "日本語 é 🙂")]


# --- byte order mark -----------------------------------------------------------------------------


def test_leading_bom_is_skipped() -> None:
    assert decode(b"\xef\xbb\xbfdata: x\n\n") == [Frame(None, "x")]


def test_only_the_first_bom_is_skipped() -> None:
    # A second BOM is part of the next field name, which then matches nothing.
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [Frame(None, "y")]


def test_bom_alone_gives_nothing() -> None:
    assert decode(b"\xef\xbb\xbf") == []


# --- CR at a chunk boundary ----------------------------------------------------------------------


def test_cr_then_lf_in_next_chunk_is_one_line_ending() -> None:
    # Read as two endings, the LF would be a blank line dispatching "a" on its own.
    assert decode_pieces([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [Frame(None, "a\nb")]


def test_cr_lf_split_before_the_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\n\r") == [Frame(None, "a")]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\ndata: b\n\n") == [Frame(None, "b")]


def test_cr_survives_empty_chunks() -> None:
    assert decode_pieces([b"data: a\r", b"", b"", b"\n", b"\r\n"]) == [Frame(None, "a")]


def test_lone_cr_dispatches_without_waiting_for_more_bytes() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [Frame(None, "a")]


# --- end of input --------------------------------------------------------------------------------


def test_close_dispatches_a_frame_missing_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\nevent: last\ndata: b\n") == [Frame(None, "a")]
    assert decoder.close() == [Frame("last", "b")]


def test_close_reads_an_unterminated_last_line() -> None:
    assert decode(b"data: a\n\ndata: [DONE]") == [Frame(None, "a"), Frame(None, "[DONE]")]
    assert decode("data: 🙂".encode()) == [Frame(None, "🙂")]


def test_close_with_nothing_pending_returns_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.close() == []
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\nevent: no-data\n: comment") == [Frame(None, "a")]
    assert decoder.close() == []


def test_close_twice_returns_nothing_the_second_time() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a")
    assert decoder.close() == [Frame(None, "a")]
    assert decoder.close() == []


# --- errors --------------------------------------------------------------------------------------


def test_invalid_utf8_raises_with_its_offset() -> None:
    error = decode_error(b"data: ok\n\ndata: bad \xff here\n\n")
    assert error.offset == 20
    assert isinstance(error, ValueError)
    assert "invalid UTF-8 at byte 20" in str(error)


def test_invalid_utf8_offset_counts_the_bom() -> None:
    assert decode_error(b"\xef\xbb\xbfdata: \xc3\x28\n\n").offset == 9


def test_truncated_character_at_end_of_input_raises() -> None:
    assert decode_error("data: 🙂".encode()[:-1]).offset == 6


def test_partial_bom_at_end_of_input_raises() -> None:
    assert decode_error(b"\xef\xbb").offset == 0


def test_invalid_utf8_in_a_comment_raises_too() -> None:
    decode_error(b": \xfe\ndata: x\n\n")


@pytest.mark.parametrize(
    ("stream", "fits"),
    [
        (b"data: " + b"x" * 94, True),  # a 100-byte line
        (b"data: " + b"x" * 95, False),
        ("data: " + "é" * 47, True),  # 47 characters, 94 bytes
        ("data: " + "é" * 48, False),
        (b"data: " + b"x" * 44 + b"\n" + b"data: " + b"y" * 44, True),  # two 50-byte lines
        (b"event: e\n" + b"data: " + b"x" * 44 + b"\n" + b"data: " + b"y" * 44, False),
    ],
)
def test_max_frame_bytes_counts_utf8_bytes_of_one_frame(stream: bytes | str, fits: bool) -> None:
    stream = stream.encode() if isinstance(stream, str) else stream
    for ending in (b"\n", b"\r\n", b"\r"):
        framed = stream.replace(b"\n", ending) + ending * 2
        if fits:
            assert len(decode(framed, max_frame_bytes=100)) == 1
        else:
            assert "max_frame_bytes=100" in str(decode_error(framed, max_frame_bytes=100))


def test_max_frame_bytes_applies_per_frame_not_per_chunk() -> None:
    stream = b"data: " + b"x" * 90 + b"\n\n"
    assert len(decode_pieces([stream * 50], max_frame_bytes=100)) == 50


def test_max_frame_bytes_stops_a_line_that_never_ends() -> None:
    decoder = SSEDecoder(max_frame_bytes=1000)
    with pytest.raises(SSEDecodeError):
        for _ in range(100):  # bounded: it must raise long before 100 pieces
            decoder.feed(b"data: " + b"x" * 100)


def test_max_frame_bytes_stops_a_frame_that_never_ends() -> None:
    decoder = SSEDecoder(max_frame_bytes=1000)
    with pytest.raises(SSEDecodeError):
        for _ in range(100):
            decoder.feed(b"data: " + b"x" * 100 + b"\n")


# --- random streams ------------------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.sampled_from(list("abc {}[]\":,\\é日本語🙂\x00\x0b\x85\u2028")),
    max_size=12,
)
_NAME = st.text(alphabet=st.sampled_from(list("abc.é語🙂")), max_size=6)
_ENDINGS = ["\n", "\r\n", "\r"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Frame]]:
    """A random event stream and the frames it must decode to."""
    lines: list[str] = []
    expected: list[Frame] = []
    last_id: str | None = None
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            lines.append(":" + draw(_TEXT))
        event = draw(st.none() | _NAME)
        if event is not None:
            lines.append("event: " + event)
        if draw(st.booleans()):
            last_id = draw(_NAME)
            lines.append("id: " + last_id)
            last_id = last_id or None
        data = draw(st.lists(_TEXT, max_size=3))
        lines += ["data: " + value for value in data]
        lines.append("")
        if data:
            expected.append(Frame(event or None, "\n".join(data), last_id))
    if lines and draw(st.booleans()):
        lines.pop()  # the last frame lacks its blank line; close() still dispatches it
    endings = [draw(st.sampled_from(_ENDINGS)) for _ in lines]
    for i in range(1, len(lines)):
        if endings[i - 1] == "\r" and not lines[i] and endings[i] == "\n":
            endings[i] = "\r\n"  # CR then an empty line's LF would be a single CRLF
    text = "".join(line + ending for line, ending in zip(lines, endings))
    if text and draw(st.booleans()):
        text = text.removesuffix(endings[-1])  # the last line is unterminated too
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode(), expected


def random_pieces(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return [stream[start:end] for start, end in zip(bounds, bounds[1:])]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_streams_decode_the_same_however_split(data: st.DataObject) -> None:
    stream, expected = data.draw(streams())
    assert decode_pieces([stream]) == expected
    assert decode_pieces(random_pieces(data.draw, stream)) == expected


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_aiter_frames_over_random_pieces(data: st.DataObject) -> None:
    stream, expected = data.draw(streams())
    pieces = random_pieces(data.draw, stream)

    async def upstream() -> AsyncIterator[bytes]:
        for piece in pieces:
            await asyncio.sleep(0)
            yield piece

    async def collect() -> list[Frame]:
        return [frame async for frame in aiter_frames(upstream())]

    assert asyncio.run(collect()) == expected


# --- encoding ------------------------------------------------------------------------------------


def test_encode_event_names_the_event_after_its_type() -> None:
    event = {"type": "response.output_text.delta", "delta": "hi", "sequence_number": 3}
    assert encode_event(event) == (
        b"event: response.output_text.delta\n"
        b'data: {"type":"response.output_text.delta","delta":"hi","sequence_number":3}\n\n'
    )


def test_encode_data_has_no_event_line() -> None:
    assert encode_data({"object": "chat.completion.chunk"}) == (
        b'data: {"object":"chat.completion.chunk"}\n\n'
    )


def test_done_sentinel() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert decode(DONE) == [Frame(None, "[DONE]")]


def test_encode_accepts_any_mapping() -> None:
    event = MappingProxyType({"type": "response.created", "n": 1})
    assert encode_event(event) == encode_event(dict(event))
    assert encode_data(MappingProxyType({"n": 1})) == b'data: {"n":1}\n\n'


def test_encode_event_rejects_a_type_with_a_line_break() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_event({"type": "a\ndata: injected"})


def test_encode_comment_is_ignored_by_the_decoder() -> None:
    assert encode_comment("keep-alive") == b": keep-alive\n\n"
    stream = encode_comment("two\nlines\r\ndata: not a field") + DONE
    assert decode(stream) == [Frame(None, "[DONE]")]


@pytest.mark.parametrize(
    "text",
    ["plain", "日本語 é 🙂", "line one\nline two\r\nthree\rfour", "\u2028\x85\x00", ""],
)
def test_encode_then_decode_round_trips(text: str) -> None:
    event = {"type": "response.output_text.delta", "delta": text, "n": 1.5}
    chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
    stream = encode_event(event) + encode_data(chunk) + DONE
    frames = decode(stream)
    assert [frame.event for frame in frames] == ["response.output_text.delta", None, None]
    assert orjson.loads(frames[0].data) == event
    assert orjson.loads(frames[1].data) == chunk
    assert frames[2].data == "[DONE]"


def test_module_docstring_examples() -> None:
    assert doctest.testmod(sse).failed == 0
