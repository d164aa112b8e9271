"""Reading versitygw's users.json and planning the import: the map key is the access key, ids default to 0, roles
map to policies, unusable accounts are reported, and malformed files are refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.errors import RequestError
from appliance.service.iam_versitygw import NO_CREATE_BUCKET, ImportedAccount, plan_import, read_users_json


def write(tmp_path: Path, data: object) -> Path:
    (tmp_path / "users.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return tmp_path


def test_reads_accounts_as_versitygw_lays_them_out(tmp_path: Path) -> None:
    accounts = read_users_json(
        write(
            tmp_path,
            {"accessAccounts": {"bob": {"access": "other", "secret": "s", "role": "userplus", "userID": 7}}},
        )
    )
    assert accounts == [ImportedAccount("bob", "s", "userplus", 7, 0, 0)]
    assert "'s'" not in repr(accounts[0])  # the secret stays out of repr
    assert read_users_json(write(tmp_path, {"accessAccounts": {}})) == []
    assert read_users_json(write(tmp_path, {})) == []  # versitygw's fresh file is {"accessAccounts":{}}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not JSON"),
        ({"accessAccounts": []}, "keyed by access key"),
        ({"accessAccounts": {"a": "x"}}, "must be an object"),
        ({"accessAccounts": {"a": {"secret": 5}}}, "strings"),
        ({"accessAccounts": {"a": {"secret": "s", "userID": "7"}}}, "integer"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, content: object, words: str) -> None:
    with pytest.raises(RequestError, match=words):
        read_users_json(write(tmp_path, content))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RequestError, match="cannot read"):
        read_users_json(tmp_path)


def test_plan_maps_roles_and_reports_problems() -> None:
    accounts = [
        ImportedAccount("admin1", "x", "admin"),
        ImportedAccount("plus", "x", "userplus"),
        ImportedAccount("plain", "x", "user"),
        ImportedAccount("Plain", "y", "user"),  # the same user name regardless of case
        ImportedAccount("has space", "x", "user"),
        ImportedAccount("nosecret", "", "user"),
        ImportedAccount("root", "x", "user"),
    ]
    planned, problems = plan_import(accounts, root=ImportedAccount("rootkey", "rs", "admin"))
    by_name = {p.name: p for p in planned}
    assert set(by_name) == {"admin1", "plus", "plain", "vgw-root", "versitygw-root"}
    assert by_name["admin1"].policies == ("admin",) and by_name["admin1"].inline == ()
    assert by_name["plus"].policies == ("readwrite",) and by_name["plus"].inline == ()
    assert by_name["plain"].inline == (("versitygw-user", NO_CREATE_BUCKET),)
    assert by_name["versitygw-root"].policies == ("admin",)
    assert json.loads(NO_CREATE_BUCKET)["Statement"][0] == {
        "Sid": "VersitygwUser",
        "Effect": "Deny",
        "Action": "s3:CreateBucket",
        "Resource": "*",
    }
    assert len(problems) == 3 and any("'Plain'" in p for p in problems)
