"""IAM's wildcard match (`*` any run, `?` one character) without regex backtracking: a pattern with several `*` is
matched segment by segment, leftmost first, so a hostile pattern (`*a*a*a*…b`) costs O(len(text) * segments), not
the polynomial or exponential time a `.*a.*a…` regex can take."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["ANY", "NEVER", "STAR", "Glob", "Token", "glob", "glob_of_tokens", "tokens_of"]

ANY = object()  # the `?` token
STAR = object()  # the `*` token; any other token is a literal string
Token = str | object


def _segment(tokens: Sequence[Token]) -> str:
    return "".join("." if t is ANY else re.escape(str(t)) for t in tokens)


class Glob:
    """A compiled wildcard pattern; `matches(text)` is a full match."""

    __slots__ = ("_head", "_head_len", "_middles", "_single", "_tail", "_tail_len")

    def __init__(self, segments: Sequence[Sequence[Token]], ignore_case: bool) -> None:
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        if len(segments) <= 2:
            # At most one `*`: one regex, whose single `.*` backtracks at most linearly.
            self._single: re.Pattern[str] | None = re.compile(".*".join(_segment(s) for s in segments), flags)
            return
        self._single = None
        self._head = re.compile(_segment(segments[0]), flags)
        self._head_len = sum(len(t) if isinstance(t, str) else 1 for t in segments[0])
        self._tail = re.compile(_segment(segments[-1]), flags)
        self._tail_len = sum(len(t) if isinstance(t, str) else 1 for t in segments[-1])
        self._middles = tuple(re.compile(_segment(s), flags) for s in segments[1:-1] if s)

    def matches(self, text: str) -> bool:
        if self._single is not None:
            return self._single.fullmatch(text) is not None
        end = len(text) - self._tail_len
        if end < self._head_len or self._head.match(text) is None or self._tail.fullmatch(text, end) is None:
            return False
        position = self._head_len
        for middle in self._middles:
            found = middle.search(text, position, end)
            if found is None:
                return False
            position = found.end()
        return True


def glob_of_tokens(tokens: Sequence[Token], ignore_case: bool = False) -> Glob:
    segments: list[list[Token]] = [[]]
    for token in tokens:
        if token is STAR:
            segments.append([])
        else:
            segments[-1].append(token)
    return Glob(segments, ignore_case)


@lru_cache(maxsize=4096)
def glob(pattern: str, ignore_case: bool = False) -> Glob:
    """The compiled form of an IAM wildcard pattern."""
    return glob_of_tokens(tokens_of(pattern), ignore_case)


def tokens_of(pattern: str) -> list[Token]:
    return [ANY if c == "?" else STAR if c == "*" else c for c in pattern]


class _Never(Glob):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__([[]], False)

    def matches(self, text: str) -> bool:
        return False


NEVER: Glob = _Never()  # what a pattern naming an unknown policy variable matches: nothing
