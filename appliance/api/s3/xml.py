"""XML in and out: a small escaping builder for responses, and a hardened parser for request bodies."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import formatdate
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from appliance.errors import MalformedXML

__all__ = ["S3_NS", "XmlBuilder", "http_date", "iso_date", "local_name", "parse_xml"]

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
# Characters XML 1.0 cannot carry even as references; replaced so a response always parses.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    return _INVALID.sub("\ufffd", text)


class XmlBuilder:
    """Appends elements in order; `open`/`close` for containers, `leaf` for text elements."""

    def __init__(self, root: str, *, namespace: bool = True) -> None:
        self._parts = ['<?xml version="1.0" encoding="UTF-8"?>\n']
        self._root = root
        self._parts.append(f'<{root} xmlns="{S3_NS}">' if namespace else f"<{root}>")

    def open(self, name: str) -> XmlBuilder:
        self._parts.append(f"<{name}>")
        return self

    def close(self, name: str) -> XmlBuilder:
        self._parts.append(f"</{name}>")
        return self

    def leaf(self, name: str, value: str | int | bool | None) -> XmlBuilder:
        if value is None:
            return self
        text = ("true" if value else "false") if isinstance(value, bool) else _escape(str(value))
        self._parts.append(f"<{name}>{text}</{name}>")
        return self

    def render(self) -> bytes:
        return ("".join(self._parts) + f"</{self._root}>").encode("utf-8")


def iso_date(ts: float) -> str:
    """S3 listing format: 2009-10-12T17:50:30.000Z."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def http_date(ts: float) -> str:
    """RFC 7231 date for Last-Modified: Wed, 12 Oct 2009 17:50:00 GMT."""
    return formatdate(ts, usegmt=True)


def local_name(tag: str) -> str:
    """Tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def parse_xml(body: bytes, *, expected_root: str) -> Element:
    """Parse a request body; DTDs, entities and external references are refused. MalformedXML on any
    problem, including a root element other than `expected_root`."""
    if not body.strip():
        raise MalformedXML()
    try:
        root: Element = SafeET.fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedXML() from exc
    if local_name(root.tag) != expected_root:
        raise MalformedXML()
    return root
