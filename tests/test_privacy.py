"""Privacy: ``<private>`` blocks removed in every shape, the Privacy settings, payloads scrubbed
through, scrubbing twice = once, long hostile inputs, and the daemon's log file without private text.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine import PRIVATE_MARKER, InvalidArgumentError, Privacy, SecretPattern, strip_private

_rng = random.Random(7)
GHP = "ghp_" + "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(35)) + "7"


# -- <private> blocks -----------------------------------------------------------------------------

STRIP_CASES = [
    ("no tags at all", "no tags at all"),
    ("a <private>secret</private> b", "a [private] b"),
    ("a <PRIVATE>secret</Private> b", "a [private] b"),
    ('a <private reason="salary">42k</private> b', "a [private] b"),
    ("a <private\n  reason='x'>secret</private\n> b", "a [private] b"),
    ("line 1\n<private>\nline 2\nline 3\n</private>\nline 4", "line 1\n[private]\nline 4"),
    ("<private>1</private> and <private>2</private>.", "[private] and [private]."),
    ("<private>out <private>in</private> still out</private> after", "[private] after"),
    ("<private>a<private>b</private>c</private>d</private>e", "[private]d</private>e"),
    ("a stray </private> stays", "a stray </private> stays"),
    ("</private><private>x</private>", "</private>[private]"),
    ("kept <private>cut short, never closed", "kept [private]"),
    ("kept <private>open <private>inner</private> still open", "kept [private]"),
    ("an empty <private/> tag and <private /> too", "an empty <private/> tag and <private /> too"),
    (
        "<privateer>, <private-ish>, <privacy> are other tags",
        "<privateer>, <private-ish>, <privacy> are other tags",
    ),
    ("a < private> b", "a < private> b"),
    ("&lt;private&gt;escaped&lt;/private&gt;", "&lt;private&gt;escaped&lt;/private&gt;"),
    ("<private>x</private><private>y</private>", "[private][private]"),
    ("x<private></private>y", "x[private]y"),
]


@pytest.mark.parametrize(("text", "expected"), STRIP_CASES)
def test_private_blocks_are_removed_in_every_shape(text: str, expected: str) -> None:
    assert strip_private(text) == expected
    assert strip_private(expected) == expected


def test_the_marker_is_the_documented_one() -> None:
    assert PRIVATE_MARKER == "[private]"
    assert engine.Privacy().scrub("<private>x</private>") == PRIVATE_MARKER


def test_a_tag_with_more_than_a_kilobyte_of_attributes_is_not_a_tag() -> None:
    long_tag = "<private " + "a" * 2000 + ">"
    assert strip_private(long_tag + "x</private>") == long_tag + "x</private>"


# -- the settings ---------------------------------------------------------------------------------


def test_private_blocks_go_even_with_redaction_off() -> None:
    text = f"<private>mine</private> GITHUB_TOKEN={GHP}"
    assert Privacy().scrub(text) == "[private] GITHUB_TOKEN=[redacted:github-token]"
    assert Privacy(redact=False).scrub(text) == f"[private] GITHUB_TOKEN={GHP}"
    assert Privacy(redact=False).patterns == ()


def test_disabled_and_extra_patterns() -> None:
    text = f"GITHUB_TOKEN={GHP} ticket TCK-123456"
    ticket = SecretPattern.of("ticket", r"\bTCK-(?P<secret>[0-9]{6})\b", ("tck-",))
    privacy = Privacy(extra_patterns=(ticket,), disabled_patterns=frozenset({"github-token"}))
    assert privacy.scrub(text) == "GITHUB_TOKEN=[redacted:assignment] ticket TCK-[redacted:ticket]"
    assert privacy.patterns[-1] is ticket
    assert "github-token" not in {p.name for p in privacy.patterns}
    both = Privacy(disabled_patterns=frozenset({"github-token", "assignment"}))
    assert both.scrub(text) == text
    assert Privacy(disabled_patterns=["jwt"]).disabled_patterns == frozenset({"jwt"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Privacy(disabled_patterns=frozenset({"githubtoken"})), "githubtoken"),
        (lambda: Privacy(extra_patterns=(SecretPattern.of("jwt", "x"),)), "two secret patterns"),
        (lambda: Privacy(extra_patterns=("x",)), "SecretPattern"),  # type: ignore[arg-type]
        (lambda: SecretPattern.of("Bad Name", "x"), "name"),
        (lambda: SecretPattern.of("x-", "x"), "name"),
        (lambda: SecretPattern.of("ok", "(unclosed"), "ok"),
        (lambda: SecretPattern.of("ok", "x", ("UPPER",)), "lowercase"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(make: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        make()  # type: ignore[operator]


# -- payloads -------------------------------------------------------------------------------------


def test_scrub_value_goes_through_dicts_lists_and_tuples_and_keeps_keys() -> None:
    payload = {
        "session_id": "abc",
        "hook_event_name": "UserPromptSubmit",
        "prompt": "deploy with <private>my salary is 42k</private> please",
        "tool_input": {
            "command": f"git push https://{GHP}@github.com/o/r",
            "args": ["--token", f"token={GHP}", 3, None, True, 1.5],
            "pair": ("<private>x</private>", 7),
        },
        f"token={GHP}": "a key is kept as it is",
        "count": 12,
    }
    before = json.dumps(payload)
    out = Privacy().scrub_value(payload)
    assert json.dumps(payload) == before  # the input is not changed
    assert list(out) == list(payload)
    assert out["prompt"] == "deploy with [private] please"
    assert out["tool_input"]["command"] == "git push https://[redacted:github-token]@github.com/o/r"
    assert out["tool_input"]["args"] == [
        "--token",
        "token=[redacted:github-token]",
        3,
        None,
        True,
        1.5,
    ]
    assert out["tool_input"]["pair"] == ("[private]", 7)
    assert out[f"token={GHP}"] == "a key is kept as it is" and out["count"] == 12
    assert Privacy().scrub_value("plain") == "plain" and Privacy().scrub_value(5) == 5


def test_scrub_value_on_a_very_deep_payload() -> None:
    deep: object = "<private>bottom</private>"
    for i in range(50_000):
        deep = [deep] if i % 2 else {"k": deep}
    out = Privacy().scrub_value(deep)
    for i in reversed(range(50_000)):
        out = out[0] if i % 2 else out["k"]  # type: ignore[index]
    assert out == "[private]"


# -- scrubbing twice = once -----------------------------------------------------------------------

FRAGMENTS = [
    "<private>",
    "</private>",
    "<PRIVATE a='b'>",
    "<private/>",
    "[private]",
    "password=",
    "token: ",
    '"',
    "'",
    "\\n",
    "\n",
    " ",
    "=",
    ":",
    "@",
    "://u:",
    "Bearer ",
    "Authorization: ",
    GHP,
    "sk-",
    "eyJ",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "MIIEvQ",
    "hunter2",
    "[redacted:jwt]",
    "AKIA",
    "0123456789ABCDEF",
    "-u ",
    "ada",
    "secret_key",
    "$TOKEN",
]


OPENING = re.compile(r"<private(?=[\s/>])[^<>]{0,1024}(?<!/)>", re.IGNORECASE)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=30))
def test_scrubbing_twice_gives_what_scrubbing_once_gave(parts: list[str]) -> None:
    privacy = Privacy()
    once = privacy.scrub("".join(parts))
    assert privacy.scrub(once) == once
    assert OPENING.search(once) is None  # every opened block was removed


def test_scrub_is_idempotent_on_a_realistic_transcript_excerpt() -> None:
    text = (
        "User: here is my config <private>home address: 1 Main St</private>\n"
        f"Assistant: I ran `curl -H 'Authorization: Bearer {GHP}' https://api`\n"
        "Tool result: -----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n"
    )
    once = Privacy().scrub(text)
    assert once == (
        "User: here is my config [private]\n"
        "Assistant: I ran `curl -H 'Authorization: Bearer [redacted:github-token]' https://api`\n"
        "Tool result: [redacted:private-key]\\n"
    )
    assert Privacy().scrub(once) == once


N = 200_000


@pytest.mark.parametrize(
    "text",
    [
        "<private" * (N // 8),
        "<private>" * (N // 9),
        "</private>" * (N // 10),
        "<private " + "x" * N,
        "<" * N,
        "<private>" + "</privat" * (N // 8),
    ],
    ids=["unterminated-tags", "nested-open", "stray-closing", "huge-attribute", "angles", "almost"],
)
def test_long_hostile_private_markup_is_stripped_in_linear_time(text: str) -> None:
    out = Privacy().scrub(text)
    assert Privacy().scrub(out) == out


# -- the daemon's log -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_private_text_and_secrets_never_reach_the_daemon_log(tmp_path: Path, fmt: str) -> None:
    from engine.app._logging import daemon_logging

    home = tmp_path / "home"
    stream = io.StringIO()
    log = logging.getLogger("engine.test_privacy")
    secret_words = ["my salary is 42k", GHP, "Tr0ub4dor&3"]
    with daemon_logging(home, level="debug", fmt=fmt, stream=stream) as path:
        log.info("prompt: <private>my salary is 42k</private> stored")
        log.info("pushing to %s with %s", f"https://{GHP}@github.com/o/r", "password=Tr0ub4dor&3")
        log.warning("and %s", "<private>my salary is 42k</private>")
        log.debug("hook", extra={"prompt": "<private>my salary is 42k</private>", "n": 3})
        try:
            raise ValueError(f"refused token={GHP}")
        except ValueError:
            log.exception("the hook failed on <private>my salary is 42k</private>")
    written = path.read_text()
    assert written == stream.getvalue()
    for word in secret_words:
        assert word not in written, word
    assert written.count("[private]") == 4
    assert "https://[redacted:github-token]@github.com/o/r" in written
    assert (
        "password=[redacted:assignment]" in written and "token=[redacted:github-token]" in written
    )
    if fmt == "json":
        records = [json.loads(line) for line in written.splitlines()]
        assert records[0]["message"] == "prompt: [private] stored"
        assert records[3]["prompt"] == "[private]" and records[3]["n"] == 3
        assert "ValueError: refused token=[redacted:github-token]" in records[4]["exception"]
    else:
        assert "INFO engine.test_privacy: prompt: [private] stored" in written
        assert "  ValueError: refused token=[redacted:github-token]" in written


def test_the_log_filter_scrubs_a_record_once_for_every_handler() -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    log = logging.getLogger("engine.test_privacy.filter")
    log.propagate = False
    scrubbing = engine.PrivacyLogFilter()
    handlers = [Collect(), Collect()]
    for h in handlers:
        h.addFilter(scrubbing)
        log.addHandler(h)
    try:
        log.warning("%s and %d", "<private>x</private>", 5, stack_info=True)
        log.warning("bad %s %s", "only one <private>x</private>")  # a broken format string
    finally:
        for h in handlers:
            log.removeHandler(h)
    assert len(seen) == 4 and seen[0] == seen[1] and seen[2] == seen[3]
    assert seen[0].startswith("[private] and 5\nStack (most recent call last):")
    assert seen[2] == "bad %s %s ('only one [private]',)"
