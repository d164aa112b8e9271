"""ACLs on the wire: the AccessControlPolicy XML document and the x-amz-acl / x-amz-grant-* request headers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.etree.ElementTree import Element

from appliance.api.s3.request import S3Request
from appliance.api.s3.xml import XmlBuilder, local_name, parse_xml
from appliance.errors import AccessDenied, InvalidArgument, InvalidRequest, MalformedACLError, MalformedXML
from appliance.service.s3_acl import GROUPS, MAX_GRANTS, PERMISSIONS, Grant, canned_grants

__all__ = ["grants_from_headers", "has_acl_headers", "parse_acl", "render_acl"]

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_CANONICAL_ID = re.compile(r"[A-Za-z0-9]{1,128}", re.ASCII)
_HEADER_PERMISSION = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*(?:"([^"]*)"|([^,\s]*))\s*(?:,|$)', re.ASCII)


def has_acl_headers(request: S3Request) -> bool:
    return "x-amz-acl" in request.headers or any(name in request.headers for name in _HEADER_PERMISSION)


def _grantee(kind: str, value: str) -> tuple[str, str]:
    if kind == "id":
        if not _CANONICAL_ID.fullmatch(value):
            raise InvalidArgument("Invalid id in an x-amz-grant header")
        return "CanonicalUser", value
    if kind == "uri":
        if value not in GROUPS:
            raise InvalidArgument("Invalid group uri in an x-amz-grant header")
        return "Group", value
    raise InvalidArgument('Grants by email address are not supported; use id="canonical id"')


def grants_from_headers(request: S3Request, owner: str, bucket_owner: str = "") -> tuple[Grant, ...] | None:
    """The ACL the request's headers ask for (always including the owner's full control), or None if they ask
    for none. InvalidRequest for a canned ACL together with grant headers, as S3."""
    canned = request.headers.get("x-amz-acl")
    present = [name for name in _HEADER_PERMISSION if name in request.headers]
    if canned is not None and present:
        raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned is not None:
        return canned_grants(canned.strip(), owner, bucket_owner)
    if not present:
        return None
    grants: list[Grant] = [Grant("CanonicalUser", owner, "FULL_CONTROL")]
    for name in present:
        text = request.headers[name]
        position = 0
        while position < len(text):
            match = _GRANTEE.match(text, position)
            if match is None or match.end() == position:
                raise InvalidArgument(f"Invalid {name} header")
            kind, value = _grantee(match.group(1), match.group(2) if match.group(2) is not None else match.group(3))
            grants.append(Grant(kind, value, _HEADER_PERMISSION[name]))  # type: ignore[arg-type]
            position = match.end()
            if len(grants) > MAX_GRANTS:
                raise InvalidArgument(f"An ACL holds at most {MAX_GRANTS} grants")
    return tuple(dict.fromkeys(grants))


def _text(element: Element) -> str:
    if len(element):
        raise MalformedACLError()
    return (element.text or "").strip()


def parse_acl(body: bytes, owner: str) -> tuple[Grant, ...]:
    """The grants of an AccessControlPolicy document. Its Owner must be the resource's owner (AccessDenied
    otherwise, as S3); MalformedACLError for anything S3's schema refuses."""
    try:
        root = parse_xml(body, expected_root="AccessControlPolicy")
    except MalformedXML:
        raise MalformedACLError() from None
    grants: list[Grant] = []
    seen_list = False
    for child in root:
        name = local_name(child.tag)
        if name == "Owner":
            for part in child:
                if local_name(part.tag) == "ID" and _text(part) != owner:
                    raise AccessDenied()
        elif name == "AccessControlList" and not seen_list:
            seen_list = True
            for grant in child:
                if local_name(grant.tag) != "Grant":
                    raise MalformedACLError()
                grants.append(_grant(grant))
                if len(grants) > MAX_GRANTS:
                    raise MalformedACLError(f"An ACL holds at most {MAX_GRANTS} grants")
        else:
            raise MalformedACLError()
    if not seen_list:
        raise MalformedACLError()
    return tuple(dict.fromkeys(grants))


def _grant(element: Element) -> Grant:
    grantee_kind = grantee = permission = ""
    for part in element:
        name = local_name(part.tag)
        if name == "Permission":
            permission = _text(part)
        elif name == "Grantee":
            grantee_kind = part.get(f"{{{_XSI}}}type", "")
            for field in part:
                field_name = local_name(field.tag)
                if field_name in ("ID", "URI", "EmailAddress"):
                    grantee = _text(field)
                    if field_name == "EmailAddress":
                        grantee_kind = "AmazonCustomerByEmail"
                elif field_name != "DisplayName":
                    raise MalformedACLError()
        else:
            raise MalformedACLError()
    if permission not in PERMISSIONS:
        raise MalformedACLError()
    if grantee_kind == "CanonicalUser" and _CANONICAL_ID.fullmatch(grantee):
        return Grant("CanonicalUser", grantee, permission)
    if grantee_kind == "Group" and grantee in GROUPS:
        return Grant("Group", grantee, permission)
    if grantee_kind == "AmazonCustomerByEmail":
        raise InvalidArgument("Grants by email address are not supported; grant to a canonical id")
    raise MalformedACLError()


def render_acl(owner: str, grants: Sequence[Grant]) -> XmlBuilder:
    xml = XmlBuilder("AccessControlPolicy")
    xml.open("Owner").leaf("ID", owner).leaf("DisplayName", owner).close("Owner")
    xml.open("AccessControlList")
    for grant in grants:
        xml.open("Grant")
        # The builder escapes text only; the grantee element carries the xsi:type attribute S3 clients read.
        xml.open(f'Grantee xmlns:xsi="{_XSI}" xsi:type="{grant.kind}"')
        if grant.kind == "CanonicalUser":
            xml.leaf("ID", grant.grantee).leaf("DisplayName", grant.grantee)
        else:
            xml.leaf("URI", grant.grantee)
        xml.close("Grantee")
        xml.leaf("Permission", grant.permission).close("Grant")
    xml.close("AccessControlList")
    return xml
