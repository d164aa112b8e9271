"""Tag sets: S3's character set and limits (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.api.s3.tagging import MAX_BUCKET_TAGS, parse_tag_header, parse_tagging
from appliance.errors import InvalidTag, MalformedXML


def doc(*pairs: tuple[str, str]) -> bytes:
    tags = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in pairs)
    return f"<Tagging><TagSet>{tags}</TagSet></Tagging>".encode()


@pytest.mark.parametrize("text", ["a b", "ünï-cødé", "日本語", "x+y-z=1.2_3:4/5@6", "٣", "a\u00a0b", ""])
def test_allowed_characters(text: str) -> None:
    assert parse_tagging(doc(("k", text))) == (("k", text),)


@pytest.mark.parametrize("text", ["a\tb", "a\nb", "a&amp;b", "a*b", "a#b", "a!b", "a%b", "a,b", "(x)", "a;b", "\u200b"])
def test_characters_outside_s3s_set_are_invalid_tag(text: str) -> None:
    with pytest.raises(InvalidTag, match="TagValue"):
        parse_tagging(doc(("k", text)))
    with pytest.raises(InvalidTag, match="TagKey"):
        parse_tagging(doc((text or "x", "v")) if text else doc(("", "v")))


def test_bucket_limit() -> None:
    pairs = [(f"k{i}", "v") for i in range(MAX_BUCKET_TAGS + 1)]
    assert len(parse_tagging(doc(*pairs[:-1]), limit=MAX_BUCKET_TAGS)) == MAX_BUCKET_TAGS
    with pytest.raises(InvalidTag):
        parse_tagging(doc(*pairs), limit=MAX_BUCKET_TAGS)


@given(st.binary(max_size=300))
def test_any_body_is_tags_or_a_request_error(body: bytes) -> None:
    try:
        parse_tagging(body, limit=MAX_BUCKET_TAGS)
    except (InvalidTag, MalformedXML):
        pass


@given(st.text(max_size=60))
def test_any_tag_header_is_tags_or_invalid_tag(value: str) -> None:
    try:
        parse_tag_header(value)
    except InvalidTag:
        pass
