"""Authorization in the S3 app through Quart's test client: IAM users from an in-memory PolicySource, anonymous
requests, bucket policies, public access blocks, ACLs and ownership controls, hostile documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from quart import Quart

from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.config import AuthConfig, S3Config
from appliance.service.buckets import BucketService
from appliance.service.iam_memory import MemoryPolicySource, MemoryUser
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.api.s3.test_app_quart import MemoryContent
from tests.support import raw

HOST = "127.0.0.1:9000"
KEYS = {"root": ("AKROOT", "root-secret"), "alice": ("AKALICE", "alice-secret"), "bob": ("AKBOB", "bob-secret")}
KEYS["carol"] = ("AKCAROL", "carol-secret")
KEYS["dave"] = ("AKDAVE", "dave-secret")
TLS_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NoPlainHttp",
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
)
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture
def app(tmp_path: Path) -> Any:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    content = MemoryContent()
    users = [
        MemoryUser("alice", *KEYS["alice"], policies=("readwrite",)),
        MemoryUser("bob", *KEYS["bob"], policies=("readonly",)),
        MemoryUser("carol", *KEYS["carol"], policies=("writeonly",)),
        MemoryUser("dave", *KEYS["dave"], policies=("readwrite", TLS_ONLY)),
    ]
    services = S3Services(
        objects=ObjectService(store, content, unpin_grace=0),
        multipart=MultipartService(store, content, unpin_grace=0),
        buckets=BucketService(store, default_region="us-east-1"),
        identity=Identity([Credentials(*KEYS["root"])]),
        s3=S3Config(),
        auth=AuthConfig(),
        policies=MemoryPolicySource(users),
    )
    yield create_app(services)
    store.close()


async def call(
    app: Quart, who: str | None, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Any:
    all_headers = dict(headers or {})
    if who is not None:
        ak, sk = KEYS[who]
        all_headers = raw.signed_headers(
            method, f"http://{HOST}{path}", access_key=ak, secret_key=sk, headers=all_headers, body=body
        )
    all_headers["Host"] = HOST
    all_headers["Content-Length"] = str(len(body))
    return await app.test_client().open(path, method=method, headers=all_headers, data=body)


async def code(response: Any) -> str:
    data = await response.get_data()
    return ET.fromstring(data).findtext("Code") or "" if data else ""


def policy(*statements: dict[str, Any]) -> bytes:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}).encode()


async def test_root_only_setup_still_does_everything(app: Quart) -> None:
    r = await call(app, "root", "PUT", "/rootb")
    assert r.status_code == 200, await r.get_data()
    assert (await call(app, "root", "PUT", "/rootb/k", b"x")).status_code == 200
    assert (await call(app, "root", "GET", "/rootb/k")).status_code == 200


async def test_unsigned_requests_are_denied_unless_granted(app: Quart) -> None:
    response = await call(app, None, "GET", "/")
    assert response.status_code == 403 and await code(response) == "AccessDenied"
    await call(app, "alice", "PUT", "/anonb")
    await call(app, "alice", "PUT", "/anonb/k", b"data")
    assert await code(await call(app, None, "GET", "/anonb/k")) == "AccessDenied"
    assert await code(await call(app, None, "PUT", "/newbucket")) == "AccessDenied"
    assert await code(await call(app, None, "GET", "/missing/k")) == "AccessDenied"
    grant = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::anonb/*"}
    assert (await call(app, "alice", "PUT", "/anonb?policy", policy(grant))).status_code == 204
    got = await call(app, None, "GET", "/anonb/k")
    assert got.status_code == 200 and await got.get_data() == b"data"
    assert await code(await call(app, None, "PUT", "/anonb/k2", b"x")) == "AccessDenied"
    assert await code(await call(app, None, "GET", "/anonb")) == "AccessDenied"  # listing not granted
    # An unsigned request cannot claim a signed streaming body.
    streaming = {"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}
    assert await code(await call(app, None, "GET", "/anonb/k", headers=streaming)) == "AccessDenied"


async def test_users_see_their_own_buckets_and_cross_user_needs_a_grant(app: Quart) -> None:
    await call(app, "alice", "PUT", "/alices")
    await call(app, "alice", "PUT", "/alices/k", b"secret")
    await call(app, "root", "PUT", "/roots")
    listed = await (await call(app, "alice", "GET", "/")).get_data()
    assert b"<Name>alices</Name>" in listed and b"roots" not in listed and b"<ID>AKALICE</ID>" in listed
    everything = await (await call(app, "root", "GET", "/")).get_data()
    assert b"alices" in everything and b"roots" in everything
    assert await code(await call(app, "bob", "GET", "/alices/k")) == "AccessDenied"
    assert await code(await call(app, "bob", "HEAD", "/alices")) == ""  # HEAD: no body
    assert (await call(app, "bob", "HEAD", "/alices")).status_code == 403
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::AKBOB:user/bob"},
        "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": "arn:aws:s3:::alices/*",
    }
    await call(app, "alice", "PUT", "/alices?policy", policy(grant))
    assert (await call(app, "bob", "GET", "/alices/k")).status_code == 200
    # bob's own identity policy (readonly) still does not let him write, whatever the bucket grants.
    assert await code(await call(app, "bob", "PUT", "/alices/new", b"x")) == "AccessDenied"
    # Bob may not manage alice's bucket policy.
    assert await code(await call(app, "bob", "GET", "/alices?policy")) == "AccessDenied"


async def test_identity_policies_per_user(app: Quart) -> None:
    await call(app, "carol", "PUT", "/carols")  # writeonly cannot create buckets
    assert (await call(app, "alice", "PUT", "/shared")).status_code == 200
    assert (await call(app, "bob", "PUT", "/bobs")).status_code == 403


async def test_bucket_policy_actions_and_errors(app: Quart) -> None:
    await call(app, "alice", "PUT", "/polb")
    assert await code(await call(app, "alice", "GET", "/polb?policy")) == "NoSuchBucketPolicy"
    assert await code(await call(app, "alice", "GET", "/polb?policyStatus")) == "NoSuchBucketPolicy"
    bad = [
        b"not json",
        b"[]",
        policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::polb/*"}),  # no Principal
        policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}),
        policy({"Effect": "Allow", "Principal": "*", "Action": "ipfs:Pin", "Resource": "arn:aws:s3:::polb/*"}),
        b'{"Statement": ' * 50 + b"1" + b"}" * 50,
        b"\xff\xfe",
        b'{"Version":"2012-10-17","Statement":['
        + b'{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"},' * 400
        + b"{}]}",
    ]
    for body in bad:
        response = await call(app, "alice", "PUT", "/polb?policy", body)
        assert response.status_code == 400 and await code(response) == "MalformedPolicy", body[:60]
    public = policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::polb/*"})
    assert (await call(app, "alice", "PUT", "/polb?policy", public)).status_code == 204
    stored = await call(app, "alice", "GET", "/polb?policy")
    assert json.loads(await stored.get_data()) == json.loads(public)
    status = await (await call(app, "alice", "GET", "/polb?policyStatus")).get_data()
    assert b"<IsPublic>true</IsPublic>" in status
    assert (await call(app, "alice", "DELETE", "/polb?policy")).status_code == 204
    assert await code(await call(app, "alice", "GET", "/polb?policy")) == "NoSuchBucketPolicy"
    assert await code(await call(app, "alice", "PUT", "/missing?policy", public)) == "NoSuchBucket"


async def test_public_access_block(app: Quart) -> None:
    await call(app, "alice", "PUT", "/pab")
    await call(app, "alice", "PUT", "/pab/k", b"v")
    assert await code(await call(app, "alice", "GET", "/pab?publicAccessBlock")) == (
        "NoSuchPublicAccessBlockConfiguration"
    )
    public = policy({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pab/*"})
    await call(app, "alice", "PUT", "/pab?policy", public)
    assert (await call(app, None, "GET", "/pab/k")).status_code == 200
    restrict = (
        b"<PublicAccessBlockConfiguration><RestrictPublicBuckets>true</RestrictPublicBuckets>"
        b"<BlockPublicPolicy>true</BlockPublicPolicy></PublicAccessBlockConfiguration>"
    )
    assert (await call(app, "alice", "PUT", "/pab?publicAccessBlock", restrict)).status_code == 200
    assert await code(await call(app, None, "GET", "/pab/k")) == "AccessDenied"
    assert await code(await call(app, "alice", "PUT", "/pab?policy", public)) == "AccessDenied"
    got = await (await call(app, "alice", "GET", "/pab?publicAccessBlock")).get_data()
    assert b"<BlockPublicAcls>false</BlockPublicAcls>" in got and b"<BlockPublicPolicy>true" in got
    for body in (
        b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>",
        b"<Other/>",
        b"<!DOCTYPE x []><x/>",
    ):
        assert await code(await call(app, "alice", "PUT", "/pab?publicAccessBlock", body)) == "MalformedXML"
    assert (await call(app, "alice", "DELETE", "/pab?publicAccessBlock")).status_code == 204
    assert (await call(app, None, "GET", "/pab/k")).status_code == 200


async def test_ownership_controls_and_acls(app: Quart) -> None:
    await call(app, "alice", "PUT", "/acl")
    await call(app, "alice", "PUT", "/acl/k", b"v")
    own = await (await call(app, "alice", "GET", "/acl?ownershipControls")).get_data()
    assert b"<ObjectOwnership>BucketOwnerEnforced</ObjectOwnership>" in own
    # ACLs are disabled by default, as in S3 since 2023.
    put = await call(app, "alice", "PUT", "/acl?acl", headers={"x-amz-acl": "public-read"})
    assert put.status_code == 400 and await code(put) == "AccessControlListNotSupported"
    assert await code(await call(app, "alice", "PUT", "/acl/k2", b"x", {"x-amz-acl": "public-read"})) == (
        "AccessControlListNotSupported"
    )
    ok = await call(app, "alice", "PUT", "/acl/k3", b"x", {"x-amz-acl": "bucket-owner-full-control"})
    assert ok.status_code == 200
    assert (await call(app, "alice", "PUT", "/acl/k4", b"x", {"x-amz-acl": "private"})).status_code == 200
    grant_header = {"x-amz-grant-read": 'id="AKBOB"'}
    assert await code(await call(app, "alice", "PUT", "/acl/k5", b"x", grant_header)) == "AccessControlListNotSupported"
    acl = await (await call(app, "alice", "GET", "/acl?acl")).get_data()
    assert b"<Permission>FULL_CONTROL</Permission>" in acl and b"AKALICE" in acl
    writer = b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>"
    assert (await call(app, "alice", "PUT", "/acl?ownershipControls", writer)).status_code == 200
    assert (await call(app, "alice", "PUT", "/acl?acl", headers={"x-amz-acl": "public-read"})).status_code == 200
    assert (await call(app, None, "GET", "/acl")).status_code == 200  # AllUsers READ on the bucket: listing
    assert await code(await call(app, None, "GET", "/acl/k")) == "AccessDenied"  # the object is still private
    assert (await call(app, "alice", "PUT", "/acl/k?acl", headers={"x-amz-acl": "public-read"})).status_code == 200
    assert (await call(app, None, "GET", "/acl/k")).status_code == 200
    object_acl = await (await call(app, "alice", "GET", "/acl/k?acl")).get_data()
    assert ALL_USERS.encode() in object_acl
    # An object written with an ACL header keeps it.
    await call(app, "alice", "PUT", "/acl/pub", b"p", {"x-amz-acl": "public-read"})
    assert (await call(app, None, "GET", "/acl/pub")).status_code == 200
    # Grant by canonical id to bob (readonly): he may read the object now, not write.
    await call(app, "alice", "PUT", "/acl/forbob", b"b", {"x-amz-grant-read": 'id="AKBOB"'})
    assert (await call(app, "bob", "GET", "/acl/forbob")).status_code == 200
    assert await code(await call(app, None, "PUT", "/acl/anon", b"x")) == "AccessDenied"
    block = b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls></PublicAccessBlockConfiguration>"
    assert (await call(app, "alice", "PUT", "/acl?publicAccessBlock", block)).status_code == 200
    public_put = await call(app, "alice", "PUT", "/acl/blocked", b"x", {"x-amz-acl": "public-read"})
    assert await code(public_put) == "AccessDenied"
    assert (await call(app, None, "GET", "/acl/pub")).status_code == 200  # existing grants still count
    deleted = await call(app, "alice", "DELETE", "/acl?ownershipControls")
    assert deleted.status_code == 204
    assert await code(await call(app, "alice", "GET", "/acl?ownershipControls")) == "OwnershipControlsNotFoundError"


@pytest.mark.parametrize(
    "body",
    [
        b"<OwnershipControls/>",
        b"<OwnershipControls><Rule><ObjectOwnership>Mine</ObjectOwnership></Rule></OwnershipControls>",
        b"<OwnershipControls><Rule><ObjectOwnership><x/></ObjectOwnership></Rule></OwnershipControls>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><OwnershipControls>&e;'
        b"</OwnershipControls>",
    ],
)
async def test_hostile_ownership_documents(app: Quart, body: bytes) -> None:
    await call(app, "alice", "PUT", "/own")
    assert await code(await call(app, "alice", "PUT", "/own?ownershipControls", body)) == "MalformedXML"


async def test_hostile_acl_documents(app: Quart) -> None:
    await call(app, "alice", "PUT", "/hacl")
    writer = b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>"
    await call(app, "alice", "PUT", "/hacl?ownershipControls", writer)
    for body in (b"<AccessControlPolicy>", b"<AccessControlPolicy/>", b"\x00\x01", b"<a>" * 3000):
        response = await call(app, "alice", "PUT", "/hacl?acl", body)
        assert response.status_code == 400 and await code(response) == "MalformedACLError", body[:40]
    foreign = b"<AccessControlPolicy><Owner><ID>AKBOB</ID></Owner><AccessControlList/></AccessControlPolicy>"
    assert await code(await call(app, "alice", "PUT", "/hacl?acl", foreign)) == "AccessDenied"
    both = await call(app, "alice", "PUT", "/hacl?acl", foreign, {"x-amz-acl": "private"})
    assert await code(both) == "InvalidRequest"
    assert await code(await call(app, "alice", "PUT", "/hacl?acl")) == "MalformedACLError"


async def test_create_bucket_acl_headers(app: Quart) -> None:
    refused = await call(app, "alice", "PUT", "/cb1", headers={"x-amz-acl": "public-read"})
    assert await code(refused) == "InvalidBucketAclWithObjectOwnership"
    assert (await call(app, "alice", "HEAD", "/cb1")).status_code == 404
    made = await call(
        app, "alice", "PUT", "/cb2", headers={"x-amz-acl": "public-read", "x-amz-object-ownership": "ObjectWriter"}
    )
    assert made.status_code == 200
    assert (await call(app, None, "GET", "/cb2")).status_code == 200


async def test_delete_objects_is_authorized_per_key(app: Quart) -> None:
    await call(app, "alice", "PUT", "/delk")
    for key in ("keep/a", "free/b"):
        await call(app, "alice", "PUT", f"/delk/{key}", b"x")
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::delk/keep/*"}
    await call(app, "alice", "PUT", "/delk?policy", policy(deny))
    body = b"<Delete><Object><Key>keep/a</Key></Object><Object><Key>free/b</Key></Object></Delete>"
    import base64
    import hashlib

    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    result = await (await call(app, "alice", "POST", "/delk?delete", body, {"Content-MD5": md5})).get_data()
    assert b"<Key>keep/a</Key><Code>AccessDenied</Code>" in result.replace(b"<VersionId></VersionId>", b"")
    assert b"<Deleted><Key>free/b</Key>" in result
    assert (await call(app, "alice", "GET", "/delk/keep/a")).status_code == 200


async def test_copy_needs_read_on_the_source(app: Quart) -> None:
    await call(app, "root", "PUT", "/rootsrc")
    await call(app, "root", "PUT", "/rootsrc/k", b"x")
    await call(app, "alice", "PUT", "/alicedst")
    copy = await call(app, "alice", "PUT", "/alicedst/k", headers={"x-amz-copy-source": "/rootsrc/k"})
    assert await code(copy) == "AccessDenied"
    await call(app, "alice", "PUT", "/alicedst/own", b"y")
    copy = await call(app, "alice", "PUT", "/alicedst/k", headers={"x-amz-copy-source": "/alicedst/own"})
    assert copy.status_code == 200


async def test_conditions_on_listing(app: Quart) -> None:
    await call(app, "alice", "PUT", "/lcond")
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": "AKBOB"},
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::lcond",
        "Condition": {"StringLike": {"s3:prefix": "public-*"}, "NumericLessThanEquals": {"s3:max-keys": "100"}},
    }
    await call(app, "alice", "PUT", "/lcond?policy", policy(grant))
    assert (await call(app, "bob", "GET", "/lcond?list-type=2&prefix=public-x&max-keys=10")).status_code == 200
    assert (await call(app, "bob", "GET", "/lcond?list-type=2&prefix=private-&max-keys=10")).status_code == 403
    assert (await call(app, "bob", "GET", "/lcond?list-type=2&prefix=public-&max-keys=1000")).status_code == 403
    assert (await call(app, "bob", "GET", "/lcond?list-type=2")).status_code == 403


async def test_identity_policy_conditions_deny(app: Quart) -> None:
    # dave may do everything, except over plain HTTP: the test client is not TLS, so the Deny wins.
    denied = await call(app, "dave", "PUT", "/daves")
    assert denied.status_code == 403 and await code(denied) == "AccessDenied"
    assert b"NoPlainHttp" not in await denied.get_data()  # the reason is logged, not sent
