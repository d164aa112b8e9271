"""IAM policy Condition blocks: the operators we support, compiled once at parse time, matched per request."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from appliance.errors import MalformedPolicy
from appliance.service.iam_glob import Glob, glob

__all__ = ["Condition", "compile_condition_block"]

_KEY = re.compile(r"(aws|s3|ipfs):[A-Za-z0-9_./+=,@-]{1,128}", re.ASCII | re.IGNORECASE)
MAX_VALUES = 100
_MEMO_SIZE = 512


def _number(text: str) -> float:
    value = float(text)  # ValueError for anything that is not a number
    if not math.isfinite(value):
        raise ValueError(text)
    return value


@lru_cache(maxsize=1024)
def _date(text: str) -> float:
    """An ISO 8601 date/time or epoch seconds, as epoch seconds."""
    if re.fullmatch(r"[0-9]{1,12}", text):
        return float(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


# Operator base name -> (parse a policy value, test (request value, parsed policy values) -> bool, negated).
# Negated operators hold when the request value matches none of the policy values.
_Test = Callable[[str, tuple[object, ...]], bool]


def _str_eq(v: str, vals: tuple[object, ...]) -> bool:
    return v in vals


def _str_eq_ic(v: str, vals: tuple[object, ...]) -> bool:
    low = v.lower()
    return any(low == str(x).lower() for x in vals)


def _str_like(v: str, vals: tuple[object, ...]) -> bool:
    return any(p.matches(v) for p in vals if isinstance(p, Glob))


def _num_cmp(op: Callable[[float, float], bool]) -> _Test:
    def test(v: str, vals: tuple[object, ...]) -> bool:
        try:
            x = _number(v)
        except ValueError:
            return False
        return any(op(x, float(y)) for y in vals if isinstance(y, float))

    return test


def _date_cmp(op: Callable[[float, float], bool]) -> _Test:
    def test(v: str, vals: tuple[object, ...]) -> bool:
        try:
            x = _date(v)
        except ValueError:
            return False
        return any(op(x, float(y)) for y in vals if isinstance(y, float))

    return test


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ip_in(v: str, vals: tuple[object, ...]) -> bool:
    address = _address(v)
    if address is None:
        return False
    return any(address in net for net in vals if isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network))


def _bool_eq(v: str, vals: tuple[object, ...]) -> bool:
    return v.lower() in ("true", "false") and (v.lower() == "true") in vals


def _like(text: str) -> Glob:
    return glob(text)


_eq: Callable[[float, float], bool] = lambda a, b: a == b  # noqa: E731
_lt: Callable[[float, float], bool] = lambda a, b: a < b  # noqa: E731
_le: Callable[[float, float], bool] = lambda a, b: a <= b  # noqa: E731
_gt: Callable[[float, float], bool] = lambda a, b: a > b  # noqa: E731
_ge: Callable[[float, float], bool] = lambda a, b: a >= b  # noqa: E731

_OPERATORS: dict[str, tuple[Callable[[str], object], _Test, bool]] = {
    "StringEquals": (str, _str_eq, False),
    "StringNotEquals": (str, _str_eq, True),
    "StringEqualsIgnoreCase": (str, _str_eq_ic, False),
    "StringNotEqualsIgnoreCase": (str, _str_eq_ic, True),
    "StringLike": (_like, _str_like, False),
    "StringNotLike": (_like, _str_like, True),
    "ArnEquals": (str, _str_eq, False),
    "ArnNotEquals": (str, _str_eq, True),
    "ArnLike": (_like, _str_like, False),
    "ArnNotLike": (_like, _str_like, True),
    "NumericEquals": (_number, _num_cmp(_eq), False),
    "NumericNotEquals": (_number, _num_cmp(_eq), True),
    "NumericLessThan": (_number, _num_cmp(_lt), False),
    "NumericLessThanEquals": (_number, _num_cmp(_le), False),
    "NumericGreaterThan": (_number, _num_cmp(_gt), False),
    "NumericGreaterThanEquals": (_number, _num_cmp(_ge), False),
    "DateEquals": (_date, _date_cmp(_eq), False),
    "DateNotEquals": (_date, _date_cmp(_eq), True),
    "DateLessThan": (_date, _date_cmp(_lt), False),
    "DateLessThanEquals": (_date, _date_cmp(_le), False),
    "DateGreaterThan": (_date, _date_cmp(_gt), False),
    "DateGreaterThanEquals": (_date, _date_cmp(_ge), False),
    "Bool": (_bool, _bool_eq, False),
    "IpAddress": (_network, _ip_in, False),
    "NotIpAddress": (_network, _ip_in, True),
}


@dataclass(frozen=True, slots=True)
class Condition:
    """One (operator, key, values) test. `key` is lower-case: condition keys are case-insensitive."""

    operator: str
    key: str
    values: tuple[object, ...]
    test: _Test
    negated: bool
    if_exists: bool
    null_check: bool = False  # the Null operator: values == (True,) means "the key must be absent"
    # request value -> outcome: a test depends on the value alone, and requests repeat values (addresses, prefixes).
    _memo: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def holds(self, context: Mapping[str, str]) -> bool:
        value = context.get(self.key)
        if self.null_check:
            return (value is None) == bool(self.values[0])
        if value is None:
            # IAM: a missing key fails a positive test, satisfies a negated one, and ...IfExists skips the test.
            return self.if_exists or self.negated
        outcome = self._memo.get(value)
        if outcome is None:
            matched = self.test(value, self.values)
            outcome = not matched if self.negated else matched
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[value] = outcome
        return outcome


def _values(raw: object, where: str) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_VALUES:
        raise MalformedPolicy(f"{where}: a condition needs 1 to {MAX_VALUES} values")
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float) and math.isfinite(item):
            out.append(repr(item) if isinstance(item, float) else str(item))
        else:
            raise MalformedPolicy(f"{where}: condition values must be strings, numbers or booleans")
    return tuple(out)


def compile_condition_block(raw: object, where: str) -> tuple[Condition, ...]:
    """The Condition element of a statement: {operator: {key: value | [values]}}; every test must hold."""
    if not isinstance(raw, dict):
        raise MalformedPolicy(f"{where}: Condition must be an object")
    conditions: list[Condition] = []
    for operator, block in raw.items():
        if not isinstance(block, dict) or not block:
            raise MalformedPolicy(f"{where}: Condition operator {operator[:40]!r} must map keys to values")
        if operator.startswith(("ForAnyValue:", "ForAllValues:")):
            raise MalformedPolicy(f"{where}: set operators (ForAnyValue/ForAllValues) are not supported")
        base = operator.removesuffix("IfExists")
        if_exists = base != operator
        for key, raw_values in block.items():
            if not isinstance(key, str) or not _KEY.fullmatch(key):
                raise MalformedPolicy(f"{where}: invalid condition key {str(key)[:60]!r}")
            values = _values(raw_values, where)
            if base == "Null" and not if_exists:
                if len(values) != 1 or values[0] not in ("true", "false"):
                    raise MalformedPolicy(f"{where}: Null takes true or false")
                conditions.append(
                    Condition("Null", key.lower(), (values[0] == "true",), _str_eq, False, False, null_check=True)
                )
                continue
            spec = _OPERATORS.get(base)
            if spec is None:
                raise MalformedPolicy(f"{where}: unsupported condition operator {operator[:40]!r}")
            parse, test, negated = spec
            try:
                parsed = tuple(parse(v) for v in values)
            except ValueError:
                raise MalformedPolicy(f"{where}: a value is not valid for {base} on {key[:60]}") from None
            conditions.append(Condition(base, key.lower(), parsed, test, negated, if_exists))
    return tuple(conditions)
