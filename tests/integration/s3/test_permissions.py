"""The permission matrix, live: real boto3 clients for several IAM users (readwrite, readonly, writeonly,
ipfs-operator), the root key and an anonymous (UNSIGNED) client against the in-process gateway on a real IPFS node.
Every action class is tried allowed and denied; anonymous access only where a bucket policy or ACL grants it;
another user's bucket is AccessDenied unless its owner grants access."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from appliance.ipfsconn.devnode import LocalNode
from appliance.service.iam_memory import MemoryPolicySource, MemoryUser
from tests.support.s3server import ThreadedGateway, running_gateway

USERS = {
    "alice": MemoryUser("alice", "AKIAALICE00000000001", "alice-secret-0123456789", ("readwrite",)),
    "bob": MemoryUser("bob", "AKIABOB0000000000001", "bob-secret-0123456789", ("readonly",)),
    "carol": MemoryUser("carol", "AKIACAROL00000000001", "carol-secret-0123456789", ("writeonly",)),
    "ops": MemoryUser("ops", "AKIAOPS0000000000001", "ops-secret-0123456789", ("ipfs-operator",)),
}
SHARED = "perm-shared"
_counter = itertools.count()


@pytest.fixture(scope="module")
def iam_gateway(tmp_path_factory: pytest.TempPathFactory, s3_node: LocalNode) -> Iterator[ThreadedGateway]:
    source = MemoryPolicySource(USERS.values())
    with running_gateway(tmp_path_factory.mktemp("iamgw"), s3_node.api_url, policies=source) as gw:
        yield gw


@pytest.fixture(scope="module")
def clients(iam_gateway: ThreadedGateway) -> dict[str, Any]:
    made: dict[str, Any] = {name: iam_gateway.client_for(u.access_key, u.secret_key) for name, u in USERS.items()}
    made["root"] = iam_gateway.client()
    made["anonymous"] = iam_gateway.anonymous_client()
    return made


def _grant_all(bucket: str, accounts: list[str]) -> str:
    statement = {
        "Sid": "EveryoneNamed",
        "Effect": "Allow",
        "Principal": {"AWS": accounts},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture(scope="module")
def shared(clients: dict[str, Any]) -> str:
    """A root-owned bucket whose policy grants every named user s3:*: what each may do is its identity policy."""
    root = clients["root"]
    root.create_bucket(Bucket=SHARED)
    root.put_object(Bucket=SHARED, Key="seed", Body=b"seed")
    root.put_bucket_policy(Bucket=SHARED, Policy=_grant_all(SHARED, [u.access_key for u in USERS.values()]))
    return SHARED


def allowed(operation: Callable[[], Any]) -> bool:
    """True if the call succeeds, False on AccessDenied; any other error fails the test."""
    try:
        operation()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in ("AccessDenied", "403"):
            return False
        raise
    return True


def _key() -> str:
    return f"k{next(_counter)}"


def _multipart(s3: Any, bucket: str) -> None:
    key = _key()
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"part")
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)


OPERATIONS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    # name: (action class, call)
    "PutObject": ("object", lambda s3, b: s3.put_object(Bucket=b, Key=_key(), Body=b"x")),
    "GetObject": ("object", lambda s3, b: s3.get_object(Bucket=b, Key="seed")["Body"].read()),
    "HeadObject": ("object", lambda s3, b: s3.head_object(Bucket=b, Key="seed")),
    "CopyObject": ("object", lambda s3, b: s3.copy_object(Bucket=b, Key=_key(), CopySource=f"{b}/seed")),
    "DeleteObject": ("object", lambda s3, b: s3.delete_object(Bucket=b, Key="never-there")),
    "ListObjectsV2": ("bucket", lambda s3, b: s3.list_objects_v2(Bucket=b)),
    "HeadBucket": ("bucket", lambda s3, b: s3.head_bucket(Bucket=b)),
    "GetBucketLocation": ("bucket", lambda s3, b: s3.get_bucket_location(Bucket=b)),
    "Multipart": ("multipart", _multipart),
    "ListMultipartUploads": ("multipart", lambda s3, b: s3.list_multipart_uploads(Bucket=b)),
    "GetBucketVersioning": ("versioning", lambda s3, b: s3.get_bucket_versioning(Bucket=b)),
    "ListObjectVersions": ("versioning", lambda s3, b: s3.list_object_versions(Bucket=b)),
    "PutBucketVersioning": (
        "versioning",
        lambda s3, b: s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"}),
    ),
    "GetObjectTagging": ("tagging", lambda s3, b: s3.get_object_tagging(Bucket=b, Key="seed")),
    "PutObjectTagging": (
        "tagging",
        lambda s3, b: s3.put_object_tagging(Bucket=b, Key="seed", Tagging={"TagSet": [{"Key": "a", "Value": "1"}]}),
    ),
    "PutBucketTagging": (
        "tagging",
        lambda s3, b: s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "t", "Value": "v"}]}),
    ),
    "GetBucketPolicy": ("policy", lambda s3, b: s3.get_bucket_policy(Bucket=b)),
    "GetBucketPolicyStatus": ("policy", lambda s3, b: s3.get_bucket_policy_status(Bucket=b)),
    "PutBucketPolicy": (
        "policy",
        lambda s3, b: s3.put_bucket_policy(Bucket=b, Policy=_grant_all(b, [u.access_key for u in USERS.values()])),
    ),
    "GetBucketAcl": ("acl", lambda s3, b: s3.get_bucket_acl(Bucket=b)),
    "GetObjectAcl": ("acl", lambda s3, b: s3.get_object_acl(Bucket=b, Key="seed")),
    "PutBucketAcl": ("acl", lambda s3, b: s3.put_bucket_acl(Bucket=b, ACL="private")),
    "GetBucketOwnershipControls": ("acl", lambda s3, b: s3.get_bucket_ownership_controls(Bucket=b)),
}

READS = {
    "GetObject",
    "HeadObject",
    "ListObjectsV2",
    "HeadBucket",
    "GetBucketLocation",
    "ListMultipartUploads",
    "GetBucketVersioning",
    "ListObjectVersions",
    "GetObjectTagging",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketAcl",
    "GetObjectAcl",
    "GetBucketOwnershipControls",
}
WRITES = {"PutObject", "Multipart", "ListMultipartUploads", "PutObjectTagging"}
EXPECTED = {
    "root": set(OPERATIONS),
    "alice": set(OPERATIONS),
    "bob": READS,
    "ops": READS,
    "carol": WRITES,
    "anonymous": set(),
}


@pytest.mark.parametrize("user", list(EXPECTED))
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_matrix(clients: dict[str, Any], shared: str, user: str, operation: str) -> None:
    _, call = OPERATIONS[operation]
    assert allowed(lambda: call(clients[user], shared)) == (operation in EXPECTED[user]), f"{user} {operation}"


def test_every_action_class_is_covered() -> None:
    classes = {cls for cls, _ in OPERATIONS.values()}
    assert classes == {"object", "bucket", "multipart", "versioning", "tagging", "policy", "acl"}


def test_list_buckets_shows_only_the_callers(clients: dict[str, Any], shared: str) -> None:
    clients["alice"].create_bucket(Bucket="perm-alice-list")
    alice = {b["Name"] for b in clients["alice"].list_buckets()["Buckets"]}
    assert "perm-alice-list" in alice and SHARED not in alice
    root = {b["Name"] for b in clients["root"].list_buckets()["Buckets"]}
    assert {"perm-alice-list", SHARED} <= root
    assert not allowed(clients["anonymous"].list_buckets)
    assert not allowed(clients["carol"].list_buckets)  # writeonly has no s3:ListAllMyBuckets


def test_cross_user_needs_the_owners_grant(clients: dict[str, Any]) -> None:
    alice, bob, carol = clients["alice"], clients["bob"], clients["carol"]
    bucket = "perm-alice-private"
    alice.create_bucket(Bucket=bucket)
    alice.put_object(Bucket=bucket, Key="doc", Body=b"alice's")
    assert not allowed(lambda: bob.get_object(Bucket=bucket, Key="doc"))
    assert not allowed(lambda: bob.list_objects_v2(Bucket=bucket))
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{USERS['bob'].access_key}:user/bob"},
        "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [grant]}))
    assert bob.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"alice's"
    assert not allowed(lambda: bob.put_object(Bucket=bucket, Key="x", Body=b"x"))  # readonly identity
    assert not allowed(lambda: bob.list_objects_v2(Bucket=bucket))  # not granted by alice
    assert not allowed(lambda: carol.put_object(Bucket=bucket, Key="x", Body=b"x"))  # not named
    assert not allowed(lambda: bob.put_bucket_policy(Bucket=bucket, Policy=json.dumps({})))


def test_anonymous_only_where_a_policy_or_acl_grants(clients: dict[str, Any]) -> None:
    alice, anonymous = clients["alice"], clients["anonymous"]
    bucket = "perm-public-policy"
    alice.create_bucket(Bucket=bucket)
    alice.put_object(Bucket=bucket, Key="page.html", Body=b"<p>hi</p>")
    assert not allowed(lambda: anonymous.get_object(Bucket=bucket, Key="page.html"))
    public = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    alice.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]}))
    assert alice.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    assert anonymous.get_object(Bucket=bucket, Key="page.html")["Body"].read() == b"<p>hi</p>"
    assert not allowed(lambda: anonymous.put_object(Bucket=bucket, Key="x", Body=b"x"))
    assert not allowed(lambda: anonymous.list_objects_v2(Bucket=bucket))
    assert not allowed(lambda: anonymous.delete_object(Bucket=bucket, Key="page.html"))

    acl_bucket = "perm-public-acl"
    alice.create_bucket(Bucket=acl_bucket, ObjectOwnership="ObjectWriter")
    alice.put_object(Bucket=acl_bucket, Key="open", Body=b"open", ACL="public-read")
    alice.put_object(Bucket=acl_bucket, Key="closed", Body=b"closed")
    assert anonymous.get_object(Bucket=acl_bucket, Key="open")["Body"].read() == b"open"
    assert not allowed(lambda: anonymous.get_object(Bucket=acl_bucket, Key="closed"))
    assert not allowed(lambda: anonymous.list_objects_v2(Bucket=acl_bucket))
    alice.put_bucket_acl(Bucket=acl_bucket, ACL="public-read")
    assert [o["Key"] for o in anonymous.list_objects_v2(Bucket=acl_bucket)["Contents"]] == ["closed", "open"]
    grants = alice.get_object_acl(Bucket=acl_bucket, Key="open")["Grants"]
    assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [g["Grantee"] for g in grants]

    alice.put_public_access_block(
        Bucket=acl_bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    assert not allowed(lambda: anonymous.get_object(Bucket=acl_bucket, Key="open"))
    assert not allowed(
        lambda: alice.put_bucket_policy(
            Bucket=acl_bucket,
            Policy=json.dumps(
                {"Version": "2012-10-17", "Statement": [{**public, "Resource": f"arn:aws:s3:::{acl_bucket}/*"}]}
            ),
        )
    )
    assert not allowed(lambda: alice.put_object_acl(Bucket=acl_bucket, Key="closed", ACL="public-read"))


def test_acls_are_disabled_by_default(clients: dict[str, Any]) -> None:
    alice = clients["alice"]
    bucket = "perm-enforced"
    alice.create_bucket(Bucket=bucket)
    controls = alice.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert controls == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    with pytest.raises(ClientError) as caught:
        alice.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert caught.value.response["Error"]["Code"] == "AccessControlListNotSupported"
    alice.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    owner = alice.get_object_acl(Bucket=bucket, Key="k")["Owner"]["ID"]
    assert owner == USERS["alice"].access_key
    with pytest.raises(ClientError) as caught:
        alice.put_bucket_policy(Bucket=bucket, Policy='{"Version": "2012-10-17", "Statement": []}')
    assert caught.value.response["Error"]["Code"] == "MalformedPolicy"
