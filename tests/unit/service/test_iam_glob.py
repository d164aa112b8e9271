"""The wildcard matcher (pure): same answers as a regex reference, and no backtracking blow-up on hostile patterns."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.service.iam_glob import NEVER, glob


def reference(pattern: str, text: str, ignore_case: bool = False) -> bool:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(body, text, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ab*?/", max_size=10), st.text(alphabet="ab/*?", max_size=14), st.booleans())
def test_agrees_with_the_regex_reference(pattern: str, text: str, ignore_case: bool) -> None:
    assert glob(pattern, ignore_case).matches(text) == reference(pattern, text, ignore_case)


def test_examples() -> None:
    assert glob("arn:aws:s3:::b/*").matches("arn:aws:s3:::b/x/y")
    assert glob("s3:get*", ignore_case=True).matches("s3:GetObject")
    assert not glob("s3:get*").matches("s3:GetObject")
    assert glob("a*b*c").matches("abc") and glob("a*b*c").matches("a-b-b-c")
    assert not glob("a*b*c").matches("acb")
    assert glob("*").matches("") and not NEVER.matches("")


def test_hostile_patterns_finish() -> None:
    # As a regex, .*a.*a...b against a long run of a's backtracks for ever; segment by segment it is linear.
    pattern = "*a" * 40 + "b"
    assert not glob(pattern).matches("a" * 5000)
    assert glob(pattern).matches("a" * 5000 + "b")
