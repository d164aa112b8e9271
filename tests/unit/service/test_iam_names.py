"""IAM name validation as a property: whatever text comes in, an accepted name is plain ASCII from IAM's charset,
unchanged by NFKC, without control characters; generated ids and keys have their documented shapes."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import ConfigError, InvalidArgument
from appliance.service import iam_names as names
from appliance.service.identity import read_root

IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")


@given(st.text(max_size=80))
def test_accepted_names_are_plain_iam_names(text: str) -> None:
    try:
        accepted = names.validate_name("user", text, names.MAX_USER_NAME)
    except InvalidArgument as exc:
        assert exc.message.startswith("the user name")
        return
    assert accepted == text and IAM_NAME.fullmatch(text)
    assert unicodedata.normalize("NFKC", text) == text


@given(st.text(alphabet="abcXYZ019_+=,.@-", min_size=1, max_size=64))
def test_every_name_in_the_charset_is_accepted(text: str) -> None:
    assert names.validate_name("user", text, names.MAX_USER_NAME) == text


def test_generated_shapes() -> None:
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", names.new_access_key())
    assert re.fullmatch(r"[A-Za-z0-9]{40}", names.new_secret())
    assert re.fullmatch(r"AGPA[A-Z0-9]{17}", names.new_id("AGPA"))
    assert len({names.new_secret() for _ in range(100)}) == 100


def test_unreadable_previous_root_keys_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    path.write_text(json.dumps({"access_key": "A", "secret_key": "S", "previous": [{"access_key": "B"}]}))
    with pytest.raises(ConfigError, match="previous root keys"):
        read_root(path)
    path.write_text(json.dumps({"access_key": "A", "secret_key": "S"}))
    keys = read_root(path)
    assert (keys.account, keys.previous, keys.secret_of("A", 0.0), keys.secret_of("B", 0.0)) == ("A", (), "S", None)
