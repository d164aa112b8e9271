"""Bucket CORS rules: parse a CORSConfiguration document with S3's checks, store it as JSON, render it back as XML,
and find the rule that allows a cross-origin request.

S3's answers, as recorded against AWS (LocalStack's validated snapshots, ceph s3-tests, issue trackers):
- no CORSRule, a rule without AllowedOrigin or AllowedMethod, an unknown element: MalformedXML;
- a method other than GET, PUT, POST, DELETE, HEAD (case-sensitive, empty included): InvalidRequest
  "Found unsupported HTTP method in CORS config. Unsupported method is X";
- an AllowedOrigin or AllowedHeader with two '*': InvalidRequest "... can not have more than one wildcard.";
- an ExposeHeader with '*': InvalidRequest (S3 does not support a wildcard there);
- '*' matches any run of characters, the empty one included, and a pattern is anchored at both ends;
- the first rule whose origins, method and every requested header match wins; header names match without regard to
  case; a rule without AllowedHeader allows no requested header.
Not observed on AWS and chosen here: more than 100 rules or a document over 64 KiB is MalformedXML; an ID over 255
characters is InvalidArgument; MaxAgeSeconds must be an integer in 0..2**31-1 (MalformedXML otherwise); an
ExposeHeader must be an HTTP token (it is sent back in a response header).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from appliance.api.s3.xml import XmlBuilder, local_name, parse_xml
from appliance.errors import (
    AccessForbidden,
    BadRequest,
    InvalidArgument,
    InvalidRequest,
    MalformedXML,
    NoSuchCORSConfiguration,
)

__all__ = [
    "ALLOWED_METHODS",
    "MAX_DOCUMENT_BYTES",
    "MAX_ID_CHARS",
    "MAX_RULES",
    "AccessForbidden",
    "BadRequest",
    "CorsRule",
    "NoSuchCORSConfiguration",
    "allow_origin_value",
    "header_safe",
    "match",
    "parse_cors",
    "parse_header_list",
    "render_cors",
    "rules_from_json",
    "rules_to_json",
]

ALLOWED_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_RULES = 100
MAX_DOCUMENT_BYTES = 64 * 1024
MAX_ID_CHARS = 255
MAX_AGE_LIMIT = 2**31 - 1
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token
_STORAGE_VERSION = 1


@dataclass(frozen=True, slots=True)
class CorsRule:
    """One CORSRule, values as the client wrote them (GetBucketCors gives them back unchanged)."""

    allowed_methods: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    id: str | None = None

    def origin_pattern(self, origin: str) -> str | None:
        """The first AllowedOrigin that matches `origin` (case-sensitive), or None."""
        for pattern in self.allowed_origins:
            if _wildcard_match(pattern, origin):
                return pattern
        return None

    def allows_header(self, name: str) -> bool:
        """Whether requested header `name` is allowed (names compare without regard to case)."""
        lowered = name.lower()
        return any(_wildcard_match(pattern.lower(), lowered) for pattern in self.allowed_headers)


def _wildcard_match(pattern: str, value: str) -> bool:
    """`pattern` holds at most one '*', which matches any run of characters (also none); anchored at both ends."""
    star = pattern.find("*")
    if star < 0:
        return pattern == value
    prefix, suffix = pattern[:star], pattern[star + 1 :]
    return len(value) >= len(prefix) + len(suffix) and value.startswith(prefix) and value.endswith(suffix)


# --- parsing ---------------------------------------------------------------------------------------------------------


def _text(element: Element) -> str:
    if len(element):
        raise MalformedXML()
    return (element.text or "").strip()


def _parse_rule(element: Element) -> CorsRule:
    methods: list[str] = []
    origins: list[str] = []
    headers: list[str] = []
    expose: list[str] = []
    max_age: int | None = None
    rule_id: str | None = None
    seen_id = seen_max_age = False
    for child in element:
        name = local_name(child.tag)
        value = _text(child)
        if name == "AllowedMethod":
            methods.append(value)
        elif name == "AllowedOrigin":
            origins.append(value)
        elif name == "AllowedHeader":
            headers.append(value)
        elif name == "ExposeHeader":
            expose.append(value)
        elif name == "MaxAgeSeconds":
            digits = value.lstrip("0") or "0"
            if seen_max_age or not value.isascii() or not value.isdigit() or len(digits) > 10:
                raise MalformedXML()
            if int(digits) > MAX_AGE_LIMIT:
                raise MalformedXML()
            seen_max_age, max_age = True, int(value)
        elif name == "ID":
            if seen_id:
                raise MalformedXML()
            seen_id, rule_id = True, value
        else:
            raise MalformedXML()
    if not methods or not origins:
        raise MalformedXML()
    rule = CorsRule(
        allowed_methods=tuple(methods),
        allowed_origins=tuple(origins),
        allowed_headers=tuple(headers),
        expose_headers=tuple(expose),
        max_age_seconds=max_age,
        id=rule_id,
    )
    _check_rule(rule)
    return rule


def _check_rule(rule: CorsRule) -> None:
    for method in rule.allowed_methods:
        if method not in ALLOWED_METHODS:
            raise InvalidRequest(f"Found unsupported HTTP method in CORS config. Unsupported method is {_clip(method)}")
    for origin in rule.allowed_origins:
        if origin.count("*") > 1:
            raise InvalidRequest(f'AllowedOrigin "{_clip(origin)}" can not have more than one wildcard.')
    for header in rule.allowed_headers:
        if header.count("*") > 1:
            raise InvalidRequest(f'AllowedHeader "{_clip(header)}" can not have more than one wildcard.')
    for header in rule.expose_headers:
        if "*" in header:
            raise InvalidRequest(
                f'ExposeHeader "{_clip(header)}" contains wildcard. We currently do not support wildcard for '
                "ExposeHeader."
            )
        if not _TOKEN.fullmatch(header):
            raise InvalidRequest(f'ExposeHeader "{_clip(header)}" is not a valid HTTP header name.')
    if rule.id is not None and len(rule.id) > MAX_ID_CHARS:
        raise InvalidArgument(f"ID length should not exceed allowed limit of {MAX_ID_CHARS}")


def _clip(text: str) -> str:
    return text if len(text) <= 100 else text[:100] + "..."


def _has_stray_text(container: Element) -> bool:
    """Text beside the child elements of a container element."""
    return bool((container.text or "").strip()) or any((child.tail or "").strip() for child in container)


def parse_cors(body: bytes) -> tuple[CorsRule, ...]:
    """A <CORSConfiguration><CORSRule>…</CORSRule>…</CORSConfiguration> document, checked as S3 checks it."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise MalformedXML(f"The CORS configuration must not exceed {MAX_DOCUMENT_BYTES} bytes.")
    root = parse_xml(body, expected_root="CORSConfiguration")
    elements = list(root)
    if _has_stray_text(root) or any(_has_stray_text(element) for element in elements):
        raise MalformedXML()
    if not elements or len(elements) > MAX_RULES:
        raise MalformedXML()
    if any(local_name(element.tag) != "CORSRule" for element in elements):
        raise MalformedXML()
    return tuple(_parse_rule(element) for element in elements)


def render_cors(rules: Iterable[CorsRule]) -> XmlBuilder:
    """The GetBucketCors document."""
    xml = XmlBuilder("CORSConfiguration")
    for rule in rules:
        xml.open("CORSRule").leaf("ID", rule.id)
        for header in rule.allowed_headers:
            xml.leaf("AllowedHeader", header)
        for method in rule.allowed_methods:
            xml.leaf("AllowedMethod", method)
        for origin in rule.allowed_origins:
            xml.leaf("AllowedOrigin", origin)
        for header in rule.expose_headers:
            xml.leaf("ExposeHeader", header)
        xml.leaf("MaxAgeSeconds", rule.max_age_seconds).close("CORSRule")
    return xml


# --- storage ---------------------------------------------------------------------------------------------------------


def rules_to_json(rules: Iterable[CorsRule]) -> str:
    """The stored form of a configuration."""
    return json.dumps(
        {
            "v": _STORAGE_VERSION,
            "rules": [
                {
                    "id": rule.id,
                    "methods": list(rule.allowed_methods),
                    "origins": list(rule.allowed_origins),
                    "headers": list(rule.allowed_headers),
                    "expose": list(rule.expose_headers),
                    "max_age": rule.max_age_seconds,
                }
                for rule in rules
            ],
        },
        separators=(",", ":"),
    )


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("stored CORS configuration: expected a list of strings")
    return tuple(value)


def rules_from_json(text: str) -> tuple[CorsRule, ...]:
    """Rules from their stored form. ValueError when the stored document is not one `rules_to_json` wrote."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != _STORAGE_VERSION or not isinstance(data.get("rules"), list):
        raise ValueError("stored CORS configuration: unknown format")
    rules: list[CorsRule] = []
    for item in data["rules"]:
        if not isinstance(item, dict):
            raise ValueError("stored CORS configuration: a rule is not an object")
        rule_id, max_age = item.get("id"), item.get("max_age")
        if rule_id is not None and not isinstance(rule_id, str):
            raise ValueError("stored CORS configuration: bad id")
        if max_age is not None and (not isinstance(max_age, int) or isinstance(max_age, bool)):
            raise ValueError("stored CORS configuration: bad max_age")
        rules.append(
            CorsRule(
                allowed_methods=_strings(item.get("methods")),
                allowed_origins=_strings(item.get("origins")),
                allowed_headers=_strings(item.get("headers", [])),
                expose_headers=_strings(item.get("expose", [])),
                max_age_seconds=max_age,
                id=rule_id,
            )
        )
    return tuple(rules)


# --- matching --------------------------------------------------------------------------------------------------------


def header_safe(value: str) -> bool:
    """Whether `value` can be sent back in a response header unchanged (printable ASCII, no control characters)."""
    return value.isascii() and value.isprintable()


def parse_header_list(value: str) -> tuple[str, ...]:
    """The names of an Access-Control-Request-Headers value, lowercased, in the order sent."""
    return tuple(name.strip().lower() for name in value.split(",") if name.strip())


def match(rules: Sequence[CorsRule], origin: str, method: str, request_headers: Sequence[str] = ()) -> CorsRule | None:
    """The first rule that allows `origin`, `method` and every one of `request_headers`, or None."""
    for rule in rules:
        if method not in rule.allowed_methods or rule.origin_pattern(origin) is None:
            continue
        if all(rule.allows_header(name) for name in request_headers):
            return rule
    return None


def allow_origin_value(rule: CorsRule, origin: str) -> str:
    """Access-Control-Allow-Origin: '*' when the origin matched a bare '*', else the origin itself."""
    return "*" if rule.origin_pattern(origin) == "*" else origin
