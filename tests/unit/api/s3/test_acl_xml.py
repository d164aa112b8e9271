"""ACL documents and headers (pure), including hostile XML."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.api.s3.acl_xml import grants_from_headers, parse_acl, render_acl
from appliance.api.s3.request import parse_request
from appliance.errors import AccessDenied, InvalidArgument, InvalidRequest, MalformedACLError
from appliance.service.s3_acl import ALL_USERS, AUTHENTICATED_USERS, Grant, acl_from_json, acl_to_json, canned_grants

XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def _headers(*pairs: tuple[str, str]):
    return parse_request(
        method="PUT",
        raw_path=b"/b",
        query_string=b"acl",
        raw_headers=[(b"host", b"h"), *((k.encode(), v.encode()) for k, v in pairs)],
        domains=(),
        max_header_bytes=8192,
    )


def _doc(grants: str, owner: str = "OWNER") -> bytes:
    return (
        f"<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList>{grants}"
        "</AccessControlList></AccessControlPolicy>"
    ).encode()


def _grant(kind: str, field: str, value: str, permission: str) -> str:
    grantee = f'<Grantee {XSI} xsi:type="{kind}"><{field}>{value}</{field}></Grantee>'
    return f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>"


def test_round_trip() -> None:
    grants = (Grant("CanonicalUser", "OWNER", "FULL_CONTROL"), Grant("Group", ALL_USERS, "READ"))
    assert parse_acl(render_acl("OWNER", grants).render(), "OWNER") == grants
    assert acl_from_json(acl_to_json(grants), "OWNER") == grants
    assert acl_from_json(None, "OWNER") == (Grant("CanonicalUser", "OWNER", "FULL_CONTROL"),)


def test_canned() -> None:
    assert Grant("Group", ALL_USERS, "WRITE") in canned_grants("public-read-write", "O")
    assert Grant("Group", AUTHENTICATED_USERS, "READ") in canned_grants("authenticated-read", "O")
    assert Grant("CanonicalUser", "B", "FULL_CONTROL") in canned_grants("bucket-owner-full-control", "O", "B")
    assert canned_grants("bucket-owner-read", "O", "O") == canned_grants("private", "O")
    with pytest.raises(InvalidArgument):
        canned_grants("world-writable", "O")


def test_grant_headers() -> None:
    request = _headers(("x-amz-grant-read", f'id="BOB", uri="{ALL_USERS}"'), ("x-amz-grant-write-acp", "id=CAROL"))
    grants = grants_from_headers(request, "O")
    assert grants == (
        Grant("CanonicalUser", "O", "FULL_CONTROL"),
        Grant("CanonicalUser", "BOB", "READ"),
        Grant("Group", ALL_USERS, "READ"),
        Grant("CanonicalUser", "CAROL", "WRITE_ACP"),
    )
    assert grants_from_headers(_headers(), "O") is None


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        ((("x-amz-acl", "private"), ("x-amz-grant-read", "id=B")), InvalidRequest),
        ((("x-amz-grant-read", 'emailAddress="a@b.c"'),), InvalidArgument),
        ((("x-amz-grant-read", 'uri="http://evil/group"'),), InvalidArgument),
        ((("x-amz-grant-read", "id=bad id"),), InvalidArgument),
        ((("x-amz-grant-read", "nonsense"),), InvalidArgument),
        ((("x-amz-grant-read", ",".join(["id=X"] * 200)),), InvalidArgument),
        ((("x-amz-acl", "public"),), InvalidArgument),
    ],
)
def test_bad_headers(pairs: tuple[tuple[str, str], ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        grants_from_headers(_headers(*pairs), "O")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<Other/>",
        b"<AccessControlPolicy><Owner><ID>OWNER</ID></Owner></AccessControlPolicy>",
        _doc(_grant("CanonicalUser", "ID", "X", "EVERYTHING")),
        _doc(_grant("CanonicalUser", "ID", "has space", "READ")),
        _doc(_grant("Group", "URI", "http://example.com/evil", "READ")),
        _doc(_grant("Unknown", "ID", "X", "READ")),
        _doc("<Grant><Grantee><ID><Nested/></ID></Grantee><Permission>READ</Permission></Grant>"),
        _doc("<Bogus/>"),
        _doc(_grant("CanonicalUser", "ID", "X", "READ") * 101),
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><AccessControlPolicy>&x;</AccessControlPolicy>',
        b"<AccessControlPolicy>" * 5000,
    ],
)
def test_malformed_acl_documents(body: bytes) -> None:
    with pytest.raises(MalformedACLError):
        parse_acl(body, "OWNER")


def test_another_owner_is_access_denied_and_email_grants_unsupported() -> None:
    with pytest.raises(AccessDenied):
        parse_acl(_doc("", owner="SOMEONE"), "OWNER")
    with pytest.raises(InvalidArgument):
        parse_acl(_doc(_grant("AmazonCustomerByEmail", "EmailAddress", "a@b.c", "READ")), "OWNER")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-full-control", "x-amz-acl"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
)
def test_arbitrary_headers_give_grants_or_a_client_error(name: str, value: str) -> None:
    try:
        grants = grants_from_headers(_headers((name, value)), "O")
    except (InvalidArgument, InvalidRequest):
        return
    assert grants is not None and grants[0] == Grant("CanonicalUser", "O", "FULL_CONTROL")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_acl_bodies_are_a_client_error_or_grants(body: bytes) -> None:
    try:
        parse_acl(body, "OWNER")
    except (MalformedACLError, AccessDenied, InvalidArgument):
        pass
