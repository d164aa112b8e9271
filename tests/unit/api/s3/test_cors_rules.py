"""Bucket CORS rules: parsing with S3's checks and limits, hostile documents, storage, rendering and matching."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.api.s3.cors_rules import (
    MAX_DOCUMENT_BYTES,
    AccessForbidden,
    BadRequest,
    CorsRule,
    NoSuchCORSConfiguration,
    allow_origin_value,
    header_safe,
    match,
    parse_cors,
    parse_header_list,
    render_cors,
    rules_from_json,
    rules_to_json,
)
from appliance.api.s3.error_map import s3_error_for
from appliance.errors import InvalidArgument, InvalidRequest, MalformedXML

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def doc(*rules: str, namespace: bool = True) -> bytes:
    xmlns = f' xmlns="{NS}"' if namespace else ""
    return f"<CORSConfiguration{xmlns}>{''.join(rules)}</CORSConfiguration>".encode()


def rule(methods: str = "GET", origins: str = "*", extra: str = "") -> str:
    body = "".join(f"<AllowedMethod>{m}</AllowedMethod>" for m in methods.split(",") if methods)
    body += "".join(f"<AllowedOrigin>{o}</AllowedOrigin>" for o in origins.split(",") if origins)
    return f"<CORSRule>{body}{extra}</CORSRule>"


# --- parsing ---------------------------------------------------------------------------------------------------------


def test_parse_full_rule() -> None:
    rules = parse_cors(
        doc(
            "<CORSRule><ID>r1</ID><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>"
            "<AllowedOrigin>https://a.example</AllowedOrigin><AllowedOrigin>http://*.b.example</AllowedOrigin>"
            "<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>"
            "<ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-request-id</ExposeHeader>"
            "<MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>",
            rule("HEAD", "*"),
        )
    )
    assert rules == (
        CorsRule(
            allowed_methods=("GET", "PUT"),
            allowed_origins=("https://a.example", "http://*.b.example"),
            allowed_headers=("x-amz-*", "Content-Type"),
            expose_headers=("ETag", "x-amz-request-id"),
            max_age_seconds=3000,
            id="r1",
        ),
        CorsRule(allowed_methods=("HEAD",), allowed_origins=("*",)),
    )


def test_parse_without_namespace_and_with_whitespace() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
    <CORSConfiguration>
      <CORSRule>
        <AllowedMethod> DELETE </AllowedMethod>
        <AllowedOrigin>
          https://a.example
        </AllowedOrigin>
      </CORSRule>
    </CORSConfiguration>"""
    assert parse_cors(body) == (CorsRule(allowed_methods=("DELETE",), allowed_origins=("https://a.example",)),)


def test_empty_origin_is_accepted() -> None:
    assert parse_cors(doc("<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin/></CORSRule>")) == (
        CorsRule(allowed_methods=("GET",), allowed_origins=("",)),
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"not xml",
        b"<CORSConfiguration>",
        doc(),  # no rule
        doc("<CORSRule/>"),
        doc(rule("GET", "")),  # no AllowedOrigin
        doc(rule("", "*")),  # no AllowedMethod
        doc(rule(extra="<Bogus>x</Bogus>")),
        doc(rule(extra="<ID>a</ID><ID>b</ID>")),
        doc(rule(extra="<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>")),
        doc(rule(extra="<MaxAgeSeconds>-1</MaxAgeSeconds>")),
        doc(rule(extra="<MaxAgeSeconds>1.5</MaxAgeSeconds>")),
        doc(rule(extra="<MaxAgeSeconds>ten</MaxAgeSeconds>")),
        doc(rule(extra="<MaxAgeSeconds>2147483648</MaxAgeSeconds>")),
        doc(rule(extra="<MaxAgeSeconds>000000000000999999999999</MaxAgeSeconds>")),
        doc(rule(extra="<MaxAgeSeconds>" + "9" * 5000 + "</MaxAgeSeconds>")),
        doc(rule(extra="<AllowedHeader><x/></AllowedHeader>")),
        doc(rule(), "<Other/>"),
        doc(rule(), "stray text"),
        doc("<CORSRule>text<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>"),
        doc("<CORSRule><AllowedMethod>GET</AllowedMethod>tail<AllowedOrigin>*</AllowedOrigin></CORSRule>"),
        b"<CORSConfig><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfig>",
        b"<Tagging><TagSet/></Tagging>",
    ],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        parse_cors(body)


def test_max_age_bounds() -> None:
    top = parse_cors(doc(rule(extra="<MaxAgeSeconds>2147483647</MaxAgeSeconds>")))
    zero = parse_cors(doc(rule(extra="<MaxAgeSeconds>0</MaxAgeSeconds>")))
    assert top[0].max_age_seconds == 2**31 - 1 and zero[0].max_age_seconds == 0


@pytest.mark.parametrize("method", ["OPTIONS", "get", "PATCH", "", "*", "GET,"])
def test_unsupported_method(method: str) -> None:
    body = doc(f"<CORSRule><AllowedMethod>{method}</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>")
    with pytest.raises(InvalidRequest) as exc:
        parse_cors(body)
    assert exc.value.message == f"Found unsupported HTTP method in CORS config. Unsupported method is {method}"
    assert s3_error_for(exc.value) == ("InvalidRequest", 400)


def test_wildcard_limits() -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_cors(doc(rule(origins="*example*.com")))
    assert exc.value.message == 'AllowedOrigin "*example*.com" can not have more than one wildcard.'
    with pytest.raises(InvalidRequest) as exc:
        parse_cors(doc(rule(extra="<AllowedHeader>x-*-*</AllowedHeader>")))
    assert exc.value.message == 'AllowedHeader "x-*-*" can not have more than one wildcard.'
    with pytest.raises(InvalidRequest, match="wildcard for ExposeHeader"):
        parse_cors(doc(rule(extra="<ExposeHeader>*</ExposeHeader>")))
    with pytest.raises(InvalidRequest, match="not a valid HTTP header name"):
        parse_cors(doc(rule(extra="<ExposeHeader>bad&#10;header</ExposeHeader>")))
    # one wildcard each is fine
    parse_cors(doc(rule(origins="http://*.example.com,*"), rule(extra="<AllowedHeader>*</AllowedHeader>")))


def test_id_length() -> None:
    parse_cors(doc(rule(extra=f"<ID>{'i' * 255}</ID>")))
    with pytest.raises(InvalidArgument):
        parse_cors(doc(rule(extra=f"<ID>{'i' * 256}</ID>")))


def test_rule_count_limit() -> None:
    assert len(parse_cors(doc(*[rule()] * 100))) == 100
    with pytest.raises(MalformedXML):
        parse_cors(doc(*[rule()] * 101))


def test_document_size_limit() -> None:
    padding = " " * (MAX_DOCUMENT_BYTES - len(doc(rule())))
    exact = doc(rule() + padding)
    assert len(exact) == MAX_DOCUMENT_BYTES
    parse_cors(exact)
    with pytest.raises(MalformedXML):
        parse_cors(doc(rule() + padding + " "))
    with pytest.raises(MalformedXML):
        parse_cors(b"<" * (10 * 1024 * 1024))  # refused before any parsing


def test_dtd_and_entities_are_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>"
        b"<AllowedOrigin>&lol2;</AllowedOrigin></CORSRule></CORSConfiguration>"
    )
    external = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>"
        b"<AllowedOrigin>&xxe;</AllowedOrigin></CORSRule></CORSConfiguration>"
    )
    for body in (laughs, external):
        with pytest.raises(MalformedXML):
            parse_cors(body)


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    depth = 9_000
    body = b"<CORSConfiguration>" + b"<a>" * depth + b"</a>" * depth + b"</CORSConfiguration>"
    assert len(body) <= MAX_DOCUMENT_BYTES
    with pytest.raises(MalformedXML):
        parse_cors(body)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_other_errors(body: bytes) -> None:
    try:
        parse_cors(body)
    except (MalformedXML, InvalidRequest, InvalidArgument):
        pass


# --- storage and rendering -------------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
_rules = st.lists(
    st.builds(
        CorsRule,
        allowed_methods=st.lists(st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"]), min_size=1, max_size=5).map(
            tuple
        ),
        allowed_origins=st.lists(_text, min_size=1, max_size=3).map(tuple),
        allowed_headers=st.lists(_text, max_size=3).map(tuple),
        expose_headers=st.lists(st.from_regex(r"[A-Za-z0-9-]{1,10}", fullmatch=True), max_size=3).map(tuple),
        max_age_seconds=st.none() | st.integers(0, 2**31 - 1),
        id=st.none() | _text,
    ),
    min_size=1,
    max_size=5,
).map(tuple)


@given(_rules)
def test_json_round_trip(rules: tuple[CorsRule, ...]) -> None:
    assert rules_from_json(rules_to_json(rules)) == rules


def _stripped(rules: tuple[CorsRule, ...]) -> tuple[CorsRule, ...]:
    """What a rule looks like after the XML round trip: values stripped, an empty ID gone."""

    def strip(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip() for v in values)

    return tuple(
        CorsRule(
            allowed_methods=r.allowed_methods,
            allowed_origins=strip(r.allowed_origins),
            allowed_headers=strip(r.allowed_headers),
            expose_headers=r.expose_headers,
            max_age_seconds=r.max_age_seconds,
            id=r.id.strip() if r.id is not None else None,
        )
        for r in rules
    )


@given(_rules)
def test_xml_round_trip(rules: tuple[CorsRule, ...]) -> None:
    rules = tuple(
        r
        for r in _stripped(rules)
        if all(o.count("*") <= 1 for o in r.allowed_origins) and all(h.count("*") <= 1 for h in r.allowed_headers)
    )
    if not rules:
        return
    assert parse_cors(render_cors(rules).render()) == rules


def test_render_shape() -> None:
    rules = parse_cors(doc(rule("GET,PUT", "https://a.example", "<ExposeHeader>ETag</ExposeHeader><ID>x</ID>")))
    root = ET.fromstring(render_cors(rules).render())
    assert root.tag == f"{{{NS}}}CORSConfiguration"
    children = [(c.tag.split("}")[1], c.text) for c in root[0]]
    assert children == [
        ("ID", "x"),
        ("AllowedMethod", "GET"),
        ("AllowedMethod", "PUT"),
        ("AllowedOrigin", "https://a.example"),
        ("ExposeHeader", "ETag"),
    ]


@pytest.mark.parametrize("stored", ["[]", "{}", '{"v": 2, "rules": []}', '{"v": 1, "rules": [{"methods": "GET"}]}'])
def test_corrupt_storage_is_a_value_error(stored: str) -> None:
    with pytest.raises(ValueError):
        rules_from_json(stored)


# --- matching --------------------------------------------------------------------------------------------------------

RULES = (
    CorsRule(allowed_methods=("PUT",), allowed_origins=("https://put.example",), allowed_headers=("x-amz-*",)),
    CorsRule(allowed_methods=("GET", "HEAD"), allowed_origins=("https://*.example", "https://exact.test")),
    CorsRule(allowed_methods=("GET",), allowed_origins=("*",), allowed_headers=("*",), max_age_seconds=10),
)


def test_first_matching_rule_wins() -> None:
    assert match(RULES, "https://a.example", "GET") is RULES[1]
    assert match(RULES, "https://put.example", "GET") is RULES[1]
    assert match(RULES, "https://put.example", "PUT") is RULES[0]
    assert match(RULES, "http://elsewhere", "GET") is RULES[2]
    assert match(RULES, "http://elsewhere", "PUT") is None
    assert match(RULES, "https://a.example", "DELETE") is None
    assert match((), "https://a.example", "GET") is None


def test_origin_wildcard_is_anchored_and_matches_empty() -> None:
    only = (CorsRule(allowed_methods=("GET",), allowed_origins=("https://*.example",)),)
    assert match(only, "https://a.b.example", "GET") is not None
    assert match(only, "https://.example", "GET") is not None
    assert match(only, "https://a.example/", "GET") is None  # a trailing slash is another origin
    assert match(only, "http://a.example", "GET") is None
    assert match(only, "https://a.example.evil", "GET") is None
    assert match(only, "https://example", "GET") is None  # prefix and suffix may not overlap
    assert match(only, "HTTPS://A.EXAMPLE", "GET") is None  # origins compare as written
    prefix = (CorsRule(allowed_methods=("GET",), allowed_origins=("https://app*",)),)
    assert match(prefix, "https://app", "GET") is not None
    assert match(prefix, "https://app.example:8443", "GET") is not None


def test_request_headers() -> None:
    assert match(RULES, "https://put.example", "PUT", ["x-amz-date", "X-AMZ-Content-SHA256"]) is RULES[0]
    assert match(RULES, "https://put.example", "PUT", ["content-type"]) is None
    assert match(RULES, "https://a.example", "GET", ["x-anything"]) is RULES[2]  # rule 1 allows no header
    exact = (CorsRule(allowed_methods=("GET",), allowed_origins=("*",), allowed_headers=("Content-TYPE",)),)
    assert match(exact, "o", "GET", ["content-type"]) is not None
    assert match(exact, "o", "GET", ["content-typex"]) is None


def test_allow_origin_value() -> None:
    assert allow_origin_value(RULES[2], "http://x") == "*"
    assert allow_origin_value(RULES[1], "https://a.example") == "https://a.example"
    both = CorsRule(allowed_methods=("GET",), allowed_origins=("https://a.example", "*"))
    assert allow_origin_value(both, "https://a.example") == "https://a.example"
    assert allow_origin_value(both, "https://b.example") == "*"


def test_header_helpers() -> None:
    assert parse_header_list(" X-Amz-Date ,content-type,, ") == ("x-amz-date", "content-type")
    assert parse_header_list("") == ()
    assert header_safe("https://a.example:8080")
    assert not header_safe("https://a\r\nSet-Cookie: x")
    assert not header_safe("https://\udcff.example")
    assert not header_safe("https://é.example")


@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_wildcard_matches_exactly_prefix_any_suffix(prefix: str, middle: str, suffix: str) -> None:
    prefix, suffix = prefix.replace("*", ""), suffix.replace("*", "")
    rules = (CorsRule(allowed_methods=("GET",), allowed_origins=(f"{prefix}*{suffix}",)),)
    assert match(rules, prefix + middle + suffix, "GET") is rules[0]
    literal = (CorsRule(allowed_methods=("GET",), allowed_origins=(prefix + suffix,)),)
    assert (match(literal, prefix + middle + suffix, "GET") is not None) == (middle == "")


def test_error_codes() -> None:
    assert s3_error_for(NoSuchCORSConfiguration()) == ("NoSuchCORSConfiguration", 404)
    assert s3_error_for(AccessForbidden()) == ("AccessForbidden", 403)
    assert s3_error_for(BadRequest()) == ("BadRequest", 400)
    assert NoSuchCORSConfiguration().message == "The CORS configuration does not exist"
    assert AccessForbidden().message.startswith("CORSResponse: This CORS request is not allowed.")
