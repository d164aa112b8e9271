"""Admin API routes for IAM (docs/iam.md). JSON in and out; secrets appear only in the answers that create them.

    GET    /iam/users                               every user
    POST   /iam/users                               {"name", "path"?, "tags"?} -> 201 the user
    GET    /iam/users/{user}                        the user, its groups, keys (no secrets) and policies
    DELETE /iam/users/{user}                        the user with its keys, memberships and attachments
    GET    /iam/users/{user}/keys                   its access keys
    POST   /iam/users/{user}/keys                   {"access_key"?, "secret_key"?, "expires"?} -> 201 key + secret
    POST   /iam/users/{user}/keys/rotate            {"grace_seconds"} -> 201 the new key + secret, the keys expiring
    POST   /iam/keys/{key}/enable | /disable        a key's status
    DELETE /iam/keys/{key}                          delete a key
    GET    /iam/groups,  POST /iam/groups           {"name", "path"?}
    GET    /iam/groups/{group}, DELETE ...          the group and its members
    PUT    /iam/groups/{group}/members/{user}       add a member; DELETE removes it
    GET    /iam/policies,  POST /iam/policies       {"name", "document", "description"?} (built-ins listed too)
    GET    /iam/policies/{name}                     the document and what it is attached to
    PUT    /iam/policies/{name}                     {"document", "description"?} a new version
    DELETE /iam/policies/{name}                     409 while attached
    PUT    /iam/{users|groups}/{name}/policies/{policy}   attach; DELETE detaches
    PUT    /iam/{users|groups}/{name}/inline/{policy}     {"document"} an inline policy; DELETE removes it
    POST   /iam/root/rotate                         {"grace_seconds"} -> 201 the new root key + secret
    POST   /iam/simulate                            {"user", "action", "resource", "source_ip"?} -> the decision

Errors are `{"error": message}` (errors.py): 400 bad input, 404 unknown entity, 409 exists/in use/limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from quart import Quart, request

from appliance.errors import InvalidArgument
from appliance.model import AccessKeyRecord, IamGroup, IamUser, ManagedPolicy
from appliance.service import iam_names as names
from appliance.service.iam import IamService, NewKey

__all__ = ["MAX_IAM_BODY", "register_iam_routes"]

_JSON = dict[str, Any]
_T = TypeVar("_T")
MAX_IAM_BODY = 64 * 1024  # a policy document (10 KiB) JSON-escaped, with room to spare
_KINDS = {"users": ("user", names.MAX_USER_NAME), "groups": ("group", names.MAX_GROUP_NAME)}


def user_document(user: IamUser) -> _JSON:
    return {
        "name": user.name,
        "user_id": user.user_id,
        "arn": user.arn,
        "path": user.path,
        "created": user.created,
        "tags": dict(user.tags),
        "attached_policies": list(user.attached),
        "inline_policies": [name for name, _ in user.inline],
    }


def group_document(group: IamGroup) -> _JSON:
    return {
        "name": group.name,
        "group_id": group.group_id,
        "arn": group.arn,
        "path": group.path,
        "created": group.created,
        "attached_policies": list(group.attached),
        "inline_policies": [name for name, _ in group.inline],
    }


def key_document(record: AccessKeyRecord) -> _JSON:
    return {
        "access_key": record.access_key,
        "user": record.user,
        "status": record.status,
        "created": record.created,
        "expires": record.expires or None,
        "last_used": record.last_used or None,
    }


def _new_key_document(new: NewKey) -> _JSON:
    return {**key_document(new.record), "secret_key": new.secret, "expiring": list(new.expiring)}


def policy_document(policy: ManagedPolicy, builtin: bool) -> _JSON:
    return {
        "name": policy.name,
        "arn": policy.arn,
        "builtin": builtin,
        "description": policy.description,
        "version": policy.version,
        "created": policy.created or None,
        "updated": policy.updated or None,
    }


async def _read(*, optional: bool) -> dict[str, Any]:
    length = request.content_length
    if length is not None and length > MAX_IAM_BODY:
        raise InvalidArgument(f"the body is larger than {MAX_IAM_BODY} bytes")
    body = bytearray()
    async for chunk in request.body:
        body += chunk
        if len(body) > MAX_IAM_BODY:
            raise InvalidArgument(f"the body is larger than {MAX_IAM_BODY} bytes")
    if optional and not body.strip():
        return {}
    try:
        data = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"the body is not JSON: {str(exc)[:100]}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument("the body must be a JSON object")
    return data


async def _body() -> dict[str, Any]:
    return await _read(optional=False)


async def _optional_body() -> dict[str, Any]:
    return await _read(optional=True)


def _kind(kinds: str) -> tuple[str, int]:
    found = _KINDS.get(kinds)
    if found is None:
        raise InvalidArgument("policies belong to users or groups: /iam/users/... or /iam/groups/...")
    return found


async def _run(call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    return await asyncio.to_thread(call, *args, **kwargs)


def register_iam_routes(app: Quart, iam: IamService) -> None:
    """Add the routes above to the admin app (behind whatever authentication the app applies to every route)."""

    def user_name(value: str) -> str:
        return names.validate_name("user", value, names.MAX_USER_NAME)

    def group_name(value: str) -> str:
        return names.validate_name("group", value, names.MAX_GROUP_NAME)

    def policy_name(value: str) -> str:
        return names.validate_name("policy", value, names.MAX_POLICY_NAME)

    # ---- users ----

    @app.get("/iam/users")
    async def iam_list_users() -> tuple[_JSON, int]:
        return {"users": [user_document(u) for u in await _run(iam.list_users)]}, 200

    @app.post("/iam/users")
    async def iam_create_user() -> tuple[_JSON, int]:
        data = await _body()
        user = await _run(iam.create_user, data.get("name"), path=data.get("path", "/"), tags=data.get("tags"))
        return user_document(user), 201

    @app.get("/iam/users/<name>")
    async def iam_get_user(name: str) -> tuple[_JSON, int]:
        user, groups, keys = await _run(iam.get_user, user_name(name))
        doc = user_document(user)
        doc["groups"] = [g.name for g in groups]
        doc["access_keys"] = [key_document(k) for k in keys]
        return doc, 200

    @app.delete("/iam/users/<name>")
    async def iam_delete_user(name: str) -> tuple[_JSON, int]:
        gone = await _run(iam.delete_user, user_name(name))
        return {"deleted": name, "access_keys_deleted": gone}, 200

    # ---- keys ----

    @app.get("/iam/users/<name>/keys")
    async def iam_list_keys(name: str) -> tuple[_JSON, int]:
        return {"access_keys": [key_document(k) for k in await _run(iam.list_keys, user_name(name))]}, 200

    @app.post("/iam/users/<name>/keys")
    async def iam_create_key(name: str) -> tuple[_JSON, int]:
        data = await _optional_body()
        new = await _run(
            iam.create_key,
            user_name(name),
            access_key=data.get("access_key"),
            secret=data.get("secret_key"),
            expires=data.get("expires"),
        )
        return _new_key_document(new), 201

    @app.post("/iam/users/<name>/keys/rotate")
    async def iam_rotate_key(name: str) -> tuple[_JSON, int]:
        data = await _optional_body()
        new = await _run(iam.rotate_key, user_name(name), data.get("grace_seconds", 0))
        return _new_key_document(new), 201

    @app.post("/iam/keys/<key>/<action>")
    async def iam_key_status(key: str, action: str) -> tuple[_JSON, int]:
        if action not in ("enable", "disable"):
            raise InvalidArgument("the action is enable or disable")
        record = await _run(iam.set_key_status, names.validate_access_key(key), active=action == "enable")
        return key_document(record), 200

    @app.delete("/iam/keys/<key>")
    async def iam_delete_key(key: str) -> tuple[_JSON, int]:
        await _run(iam.delete_key, names.validate_access_key(key))
        return {"deleted": key}, 200

    # ---- groups ----

    @app.get("/iam/groups")
    async def iam_list_groups() -> tuple[_JSON, int]:
        return {"groups": [group_document(g) for g in await _run(iam.list_groups)]}, 200

    @app.post("/iam/groups")
    async def iam_create_group() -> tuple[_JSON, int]:
        data = await _body()
        return group_document(await _run(iam.create_group, data.get("name"), path=data.get("path", "/"))), 201

    @app.get("/iam/groups/<name>")
    async def iam_get_group(name: str) -> tuple[_JSON, int]:
        group, members = await _run(iam.get_group, group_name(name))
        return {**group_document(group), "members": members}, 200

    @app.delete("/iam/groups/<name>")
    async def iam_delete_group(name: str) -> tuple[_JSON, int]:
        await _run(iam.delete_group, group_name(name))
        return {"deleted": name}, 200

    @app.put("/iam/groups/<name>/members/<user>")
    async def iam_add_member(name: str, user: str) -> tuple[_JSON, int]:
        changed = await _run(iam.set_member, group_name(name), user_name(user), member=True)
        return {"group": name, "user": user, "changed": changed}, 200

    @app.delete("/iam/groups/<name>/members/<user>")
    async def iam_remove_member(name: str, user: str) -> tuple[_JSON, int]:
        changed = await _run(iam.set_member, group_name(name), user_name(user), member=False)
        return {"group": name, "user": user, "changed": changed}, 200

    # ---- policies ----

    @app.get("/iam/policies")
    async def iam_list_policies() -> tuple[_JSON, int]:
        return {"policies": [policy_document(p, b) for p, b in await _run(iam.list_policies)]}, 200

    @app.post("/iam/policies")
    async def iam_create_policy() -> tuple[_JSON, int]:
        data = await _body()
        policy = await _run(
            iam.put_policy, data.get("name"), data.get("document"), create=True, description=data.get("description", "")
        )
        return policy_document(policy, False), 201

    @app.get("/iam/policies/<name>")
    async def iam_get_policy(name: str) -> tuple[_JSON, int]:
        policy, builtin, entities = await _run(iam.get_policy, policy_name(name))
        doc = policy_document(policy, builtin)
        doc["document"] = policy.document
        doc["attached_to"] = [{"kind": kind, "name": entity} for kind, entity in entities]
        return doc, 200

    @app.put("/iam/policies/<name>")
    async def iam_update_policy(name: str) -> tuple[_JSON, int]:
        data = await _body()
        policy = await _run(
            iam.put_policy,
            policy_name(name),
            data.get("document"),
            create=False,
            description=data.get("description", ""),
        )
        return policy_document(policy, False), 200

    @app.delete("/iam/policies/<name>")
    async def iam_delete_policy(name: str) -> tuple[_JSON, int]:
        await _run(iam.delete_policy, policy_name(name))
        return {"deleted": name}, 200

    @app.put("/iam/<kinds>/<name>/policies/<policy>")
    async def iam_attach_policy(kinds: str, name: str, policy: str) -> tuple[_JSON, int]:
        kind, limit = _kind(kinds)
        entity = names.validate_name(kind, name, limit)
        changed = await _run(iam.attach, kind, entity, policy_name(policy), attach=True)
        return {kind: name, "policy": policy, "attached": True, "changed": changed}, 200

    @app.delete("/iam/<kinds>/<name>/policies/<policy>")
    async def iam_detach_policy(kinds: str, name: str, policy: str) -> tuple[_JSON, int]:
        kind, limit = _kind(kinds)
        entity = names.validate_name(kind, name, limit)
        changed = await _run(iam.attach, kind, entity, policy_name(policy), attach=False)
        return {kind: name, "policy": policy, "attached": False, "changed": changed}, 200

    @app.put("/iam/<kinds>/<name>/inline/<policy>")
    async def iam_put_inline(kinds: str, name: str, policy: str) -> tuple[_JSON, int]:
        kind, limit = _kind(kinds)
        data = await _body()
        await _run(iam.put_inline, kind, names.validate_name(kind, name, limit), policy, data.get("document"))
        return {kind: name, "inline_policy": policy}, 200

    @app.delete("/iam/<kinds>/<name>/inline/<policy>")
    async def iam_delete_inline(kinds: str, name: str, policy: str) -> tuple[_JSON, int]:
        kind, limit = _kind(kinds)
        await _run(iam.delete_inline, kind, names.validate_name(kind, name, limit), policy_name(policy))
        return {kind: name, "deleted_inline_policy": policy}, 200

    # ---- root and simulator ----

    @app.post("/iam/root/rotate")
    async def iam_rotate_root() -> tuple[_JSON, int]:
        data = await _optional_body()
        creds, until = await _run(iam.rotate_root, data.get("grace_seconds", 0))
        return {"access_key": creds.access_key, "secret_key": creds.secret_key, "previous_valid_until": until}, 201

    @app.post("/iam/simulate")
    async def iam_simulate() -> tuple[_JSON, int]:
        data = await _body()
        user = data.get("user")
        if not isinstance(user, str):
            raise InvalidArgument("user must be a user name")
        decision = await _run(
            iam.simulate, user_name(user), data.get("action"), data.get("resource"), data.get("source_ip", "")
        )
        return decision, 200
