"""Tag sets: parse and check them (XML body or the x-amz-tagging header) with S3's limits, render them as XML."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote_plus

from appliance.api.s3.xml import XmlBuilder, local_name, parse_xml
from appliance.errors import InvalidTag, MalformedXML

__all__ = ["MAX_BUCKET_TAGS", "MAX_OBJECT_TAGS", "Tags", "parse_tag_header", "parse_tagging", "render_tagging"]

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256
# S3's tag character set: Unicode letters (L*), numbers (N*) and spaces (Z*), and + - = . _ : / @. Tabs, line
# breaks and other controls are not in it.
_ALLOWED_PUNCTUATION = frozenset("+-=._:/@")


def _allowed(text: str) -> bool:
    return all(ch in _ALLOWED_PUNCTUATION or unicodedata.category(ch)[0] in "LNZ" for ch in text)


Tags = tuple[tuple[str, str], ...]


def _check(tags: list[tuple[str, str]], limit: int) -> Tags:
    if len(tags) > limit:
        raise InvalidTag(f"Object tags cannot be greater than {limit}" if limit == MAX_OBJECT_TAGS else "Too many tags")
    seen: set[str] = set()
    for key, value in tags:
        if not key or len(key) > MAX_KEY_CHARS or not _allowed(key):
            raise InvalidTag("The TagKey you have provided is invalid")
        if len(value) > MAX_VALUE_CHARS or not _allowed(value):
            raise InvalidTag("The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise InvalidTag("Your TagKey cannot be prefixed with aws:")
        if key in seen:
            raise InvalidTag("Cannot provide multiple Tags with the same key")
        seen.add(key)
    return tuple(tags)


def parse_tagging(body: bytes, *, limit: int = MAX_OBJECT_TAGS) -> Tags:
    """A <Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging> document."""
    root = parse_xml(body, expected_root="Tagging")
    tag_sets = [child for child in root if local_name(child.tag) == "TagSet"]
    if len(tag_sets) != 1 or len(root) != 1:
        raise MalformedXML()
    tags: list[tuple[str, str]] = []
    for tag in tag_sets[0]:
        if local_name(tag.tag) != "Tag":
            raise MalformedXML()
        fields = {local_name(f.tag): f for f in tag}
        if set(fields) != {"Key", "Value"} or len(tag) != 2 or any(len(f) for f in tag):
            raise MalformedXML()
        tags.append((fields["Key"].text or "", fields["Value"].text or ""))
    return _check(tags, limit)


def parse_tag_header(value: str) -> Tags:
    """The x-amz-tagging header: URL-encoded key=value pairs joined by '&'."""
    tags: list[tuple[str, str]] = []
    for piece in value.split("&"):
        if not piece:
            continue
        key, _, val = piece.partition("=")
        tags.append((unquote_plus(key), unquote_plus(val)))
    return _check(tags, MAX_OBJECT_TAGS)


def render_tagging(tags: Tags) -> XmlBuilder:
    xml = XmlBuilder("Tagging")
    xml.open("TagSet")
    for key, value in tags:
        xml.open("Tag").leaf("Key", key).leaf("Value", value).close("Tag")
    return xml.close("TagSet")
