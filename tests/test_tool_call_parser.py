"""The incremental tool-call parser: pure Python, no model."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicetui.plugins.local.tool_call_parser import (
    ParsedToolCall,
    ParserEvent,
    TextPiece,
    ToolCallParser,
    parse_all,
)

CALL = '{"name": "get_time", "arguments": {}}'
WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}'


def run_chunks(chunks: list[str]) -> tuple[list[ParserEvent], ToolCallParser]:
    parser = ToolCallParser()
    events: list[ParserEvent] = []
    for c in chunks:
        events.extend(parser.feed(c))
    events.extend(parser.flush())
    return events, parser


def normalized(events: list[ParserEvent]) -> list[ParserEvent]:
    """Adjacent text pieces merged (chunking may split text differently)."""
    out: list[ParserEvent] = []
    for e in events:
        if isinstance(e, TextPiece) and out and isinstance(out[-1], TextPiece):
            out[-1] = TextPiece(out[-1].text + e.text)
        elif not (isinstance(e, TextPiece) and not e.text):
            out.append(e)
    return out


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(text[last:p])
        last = p
    pieces.append(text[last:])
    return pieces


@pytest.mark.parametrize(
    ("text", "spoken", "calls"),
    [
        ("Hello there.", "Hello there.", []),
        (CALL, "", [("get_time", {})]),
        (f"<tool_call>\n{CALL}\n</tool_call>", "", [("get_time", {})]),
        (f"<tool_call>{WEATHER}</tool_call>", "", [("get_weather", {"city": "Paris"})]),
        (f"```json\n{CALL}\n```", "", [("get_time", {})]),
        (f"```\n{CALL}\n```", "", [("get_time", {})]),
        # stray text before is spoken, text after a call is dropped (an invented result)
        (f"Let me check. {CALL} It is 5 pm.", "Let me check. ", [("get_time", {})]),
        (f"Sure!\n<tool_call>\n{CALL}\n</tool_call>\nThe time is", "Sure!\n", [("get_time", {})]),
        # several calls
        (
            f"<tool_call>\n{CALL}\n</tool_call>\n<tool_call>\n{WEATHER}\n</tool_call>",
            "",
            [("get_time", {}), ("get_weather", {"city": "Paris"})],
        ),
        (f"{CALL}\n{WEATHER}", "", [("get_time", {}), ("get_weather", {"city": "Paris"})]),
        # arguments as a JSON string, "parameters", the OpenAI nesting
        ('{"name": "f", "arguments": "{\\"a\\": 1}"}', "", [("f", {"a": 1})]),
        ('{"name": "f", "parameters": {"a": 2}}', "", [("f", {"a": 2})]),
        ('{"type": "function", "function": {"name": "f", "arguments": {}}}', "", [("f", {})]),
        # malformed JSON and other shapes stay text
        ('{"name": get_time}', '{"name": get_time}', []),
        ('{"name": "get_time"}', '{"name": "get_time"}', []),
        ('{"name": "f", "arguments": "not json"}', '{"name": "f", "arguments": "not json"}', []),
        ('{"name": "f", "arguments": [1]}', '{"name": "f", "arguments": [1]}', []),
        ('{"name": "a", "argu', '{"name": "a", "argu', []),  # cut off at the end
        # text that merely contains braces, tags or backticks is spoken
        ("Use {x} in an f-string.", "Use {x} in an f-string.", []),
        ('The dict {"a": 1} has one key.', 'The dict {"a": 1} has one key.', []),
        ("{}", "{}", []),
        ("x < y, and `code` too", "x < y, and `code` too", []),
        ("```python\nprint(1)\n```", "```python\nprint(1)\n```", []),
        ("ends with {", "ends with {", []),
        ("ends with <tool", "ends with <tool", []),
        # tags alone are never spoken
        ("<tool_call>\nhello", "hello", []),
        (
            'a "quoted} brace" {"name": "f", "arguments": {"s": "}{"}}',
            'a "quoted} brace" ',
            [("f", {"s": "}{"})],
        ),
    ],
)
def test_cases(text: str, spoken: str, calls: list[tuple[str, dict[str, object]]]) -> None:
    got_text, got_calls = parse_all(text)
    assert got_text == spoken
    assert [(c.name, json.loads(c.arguments)) for c in got_calls] == calls
    # the same fed one character at a time
    events, _ = run_chunks(list(text))
    assert "".join(e.text for e in events if isinstance(e, TextPiece)) == spoken
    assert [c for c in events if isinstance(c, ParsedToolCall)] == got_calls


def test_text_is_released_as_soon_as_it_cannot_be_a_call() -> None:
    parser = ToolCallParser()
    assert parser.feed("Hello ") == [TextPiece("Hello ")]
    assert parser.feed("{") == []  # may start a call: held
    assert parser.feed("x") == [TextPiece("{x")]  # not JSON with keys: released
    assert parser.feed(' {"na') == [TextPiece(" ")]
    assert parser.feed('me": "get_time", "arguments": {}') == []
    assert parser.feed("}") == [ParsedToolCall("get_time", "{}")]
    assert parser.flush() == []


def test_finished_after_text_following_a_call() -> None:
    parser = ToolCallParser()
    assert parser.feed(CALL) == [ParsedToolCall("get_time", "{}")]
    assert not parser.finished
    assert parser.feed("\n\n") == []
    assert not parser.finished  # whitespace: another call may follow
    assert parser.feed("The time is") == []
    assert parser.finished
    assert parser.feed(CALL) == []
    assert parser.flush() == []
    assert parser.calls_found == 1


def test_unclosed_object_is_capped() -> None:
    parser = ToolCallParser(max_call_chars=50)
    events = parser.feed('{"name": "f", "arguments": {"text": "' + "a" * 100)
    text = "".join(e.text for e in events if isinstance(e, TextPiece))
    assert text.startswith('{"name"')  # released as text once past the cap
    events += parser.flush()
    assert not [e for e in events if isinstance(e, ParsedToolCall)]


# --- properties -------------------------------------------------------------------------------
_fragments = st.sampled_from(
    [
        CALL,
        WEATHER,
        "<tool_call>",
        "</tool_call>",
        "<tool_call>\n" + CALL + "\n</tool_call>\n",
        "```json\n",
        "```",
        "\n",
        " ",
        "{",
        "}",
        "{x}",
        '{"a": 1}',
        '{"name": broken}',
        '"',
        "<",
        "`",
        "Hello, world.",
        "It is 5 pm.",
        "é✓",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.one_of(_fragments, st.text(max_size=8)), max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_chunking_does_not_change_the_result(parts: list[str], cuts: list[int]) -> None:
    text = "".join(parts)
    whole, p1 = run_chunks([text])
    chunked, p2 = run_chunks(split_at(text, cuts))
    assert normalized(chunked) == normalized(whole)
    assert p1.finished == p2.finished


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="{<`"), max_size=60))
def test_plain_text_is_spoken_unchanged_and_immediately(text: str) -> None:
    parser = ToolCallParser()
    released = "".join(e.text for e in parser.feed(text) if isinstance(e, TextPiece))
    assert released == text
    assert parser.flush() == []


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(alphabet=st.characters(blacklist_characters="{<`"), max_size=30),
    after=st.text(max_size=30),
    args=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    tagged=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_a_call_amid_stray_text_is_found_and_its_json_never_spoken(
    before: str, after: str, args: dict[str, object], tagged: bool, cuts: list[int]
) -> None:
    call = json.dumps({"name": "tool", "arguments": args})
    body = f"<tool_call>\n{call}\n</tool_call>" if tagged else call
    text = f"{before}{body}{after}"
    events, _ = run_chunks(split_at(text, cuts))
    calls = [e for e in events if isinstance(e, ParsedToolCall)]
    assert calls and calls[0] == ParsedToolCall("tool", json.dumps(args, ensure_ascii=False))
    spoken = "".join(e.text for e in events if isinstance(e, TextPiece))
    assert spoken == before
