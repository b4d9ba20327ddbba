"""An audit entry's digest is computed with orjson when it writes the very bytes json.dumps
(sorted keys, no spaces, ensure_ascii=False, UTF-8) writes, and with json.dumps otherwise:
every sealed chain was hashed over the json.dumps form. Proved for every code point as a
key and as a value, the integer bounds, floats (which json.dumps always writes), the types
orjson writes where json.dumps refuses them, and real audit rows with the digests the
json.dumps form gave them; a changed row still fails verification."""

from __future__ import annotations

import dataclasses
import enum
import json
import random
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygrid.domain import audit_chain

ROWS = Path(__file__).with_name("audit_digest_rows.json")
SURROGATES = range(0xD800, 0xE000)
PLANES = range(0x11)  # 0x10000 code points each
BOUNDED = settings(max_examples=300, deadline=None, database=None)


def reference(tree: Any) -> bytes:
    """The canonical form every sealed chain was hashed over."""
    text = json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def fast(tree: Any) -> bytes:
    return orjson.dumps(tree, option=orjson.OPT_SORT_KEYS)


def short(value: Any) -> str:
    return repr(value)[:40]


def assert_canonical(tree: dict[str, Any]) -> None:
    assert audit_chain.canonical_json(tree) == reference(tree)


def _chars(plane: int) -> list[str]:
    start = plane * 0x10000
    return [chr(c) for c in range(start, start + 0x10000) if c not in SURROGATES]


# -- every code point --------------------------------------------------------------------


@pytest.mark.parametrize("plane", PLANES)
def test_every_code_point_as_a_value_is_written_alike(plane: int) -> None:
    chars = _chars(plane)
    tree = {
        "one_each": chars,
        "joined": "".join(chars),
        "between": [f'a{c}\\{c}"{c}z' for c in chars],
    }
    expected = reference(tree)
    assert audit_chain._orjson_exact(tree.values())  # the fast path is taken ...
    assert fast(tree) == expected  # ... and writes the json.dumps bytes
    assert audit_chain.canonical_json(tree) == expected


@pytest.mark.parametrize("plane", PLANES)
def test_every_code_point_as_a_key_is_written_and_sorted_alike(plane: int) -> None:
    chars = _chars(plane)
    keys = chars + [f"k{c}" for c in chars] + [f"{c}\U0010ffff" for c in chars[::97]]
    random.Random(plane).shuffle(keys)  # insertion order is not the sorted order
    tree = {"keys": dict.fromkeys(keys, 1), "nested": {c: {c: c} for c in chars[::251]}}
    expected = reference(tree)
    assert audit_chain._orjson_exact(tree.values())
    assert fast(tree) == expected
    assert audit_chain.canonical_json(tree) == expected


def test_keys_sort_by_code_point_across_planes_not_by_utf16() -> None:
    # UTF-16 would put U+1F600 (a surrogate pair, D83D DE00) before U+FFFF and U+E000.
    pairs = ["\uffff", "\U0001f600", "\ue000", "\ud7ff", "\U00010000", "\U0010ffff", "\x7f"]
    prefixes = ["a", "a\x00", "ab", "a\U0001f600", "a\uffff", "", "\x00"]
    sample = [chr(c) for c in range(0, 0x110000, 17) if c not in SURROGATES]
    keys = pairs + prefixes + sample
    random.Random(7).shuffle(keys)
    tree = dict.fromkeys(keys, None)
    assert audit_chain._orjson_exact(tree.values())
    assert fast(tree) == reference(tree)
    assert fast({"\U0001f600": 1, "\uffff": 2}) == '{"\uffff":2,"\U0001f600":1}'.encode()


def test_control_characters_and_separators_have_the_same_escapes() -> None:
    text = "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\x80\x9f\u2028\u2029\ufeff\ufffe'
    tree = {text: text, "list": list(text)}
    assert fast(tree) == reference(tree)
    assert b"\\u001f" in reference(tree) and b"\\b\\t\\n\\u000b\\f\\r" in reference(tree)


# -- numbers, nesting and everything else ------------------------------------------------

INTS = [
    0, 1, -1, 2**31, 2**32, -(2**31) - 1,
    2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1,
    2**63 - 1, 2**63, 2**63 + 1, -(2**63), -(2**63) + 1,
    2**64 - 1,
]  # fmt: skip
BIG_INTS = [2**64, 2**64 + 1, -(2**63) - 1, -(2**64), 10**30, -(10**30), 10**400]
FLOATS = [
    0.0, -0.0, 0.1, 0.5, 1.0, -1.0, 1.5, 100.0, 1234.5678, 1e-4, 1e-5, 1e-7, 1e15, 1e16,
    1.5e16, 1e21, 1e22, 9007199254740993.0, 123456789012345680.0, 1e300, -1e300,
    1.7976931348623157e308, 2.2250738585072014e-308, 5e-324, 1 / 3, 2 / 3,
    float("nan"), float("inf"), float("-inf"),
]  # fmt: skip
NESTED: list[Any] = [
    [],
    {},
    [[], {}, [[]], {"": {}}],
    {"a": [1, {"b": None, "c": [True, False]}], "\u00e9": {"z": "", "a": []}},
    {"metadata": {"order": "ord_1", "\uffff": "x", "\U0001f600": ["\u2028", "\x00"]}},
    [None, True, False, 0, "", "0", "null", "true"],
    {"true": True, "false": False, "null": None, "1": 1, "-1": -1},
]


def _nest(levels: int) -> Any:
    tree: Any = "bottom"
    for level in range(levels):
        tree = {"k": tree, "n": level} if level % 2 else [tree, level]
    return tree


def _entry(after: Any) -> dict[str, Any]:
    return {
        "id": "aud_00000000000000ff",
        "merchant_id": "mer_1",
        "livemode": False,
        "actor": "system",
        "action": "payment.updated",
        "object_type": "payment",
        "object_id": "pay_1",
        "before": None,
        "after": after,
        "request_id": None,
        "ip": "127.0.0.1",
        "created_at": "2026-12-07T16:51:03.391327+00:00",
    }


@pytest.mark.parametrize("value", [*INTS, *NESTED, _nest(50), _nest(150)], ids=short)
def test_ints_bools_none_and_nesting_take_the_fast_path(value: Any) -> None:
    tree = _entry(value)
    assert audit_chain._orjson_exact(tree.values())
    assert fast(tree) == reference(tree)
    assert_canonical(tree)
    assert_canonical(_entry({"amount": value, "items": [value, {"v": value}]}))


@pytest.mark.parametrize("value", BIG_INTS, ids=short)
def test_ints_beyond_64_bits_fall_back(value: int) -> None:
    with pytest.raises(orjson.JSONEncodeError):
        fast({"v": value})
    assert_canonical(_entry(value))
    assert_canonical(_entry({"amount": [1, value]}))


@pytest.mark.parametrize("value", FLOATS, ids=short)
def test_floats_always_fall_back(value: float) -> None:
    tree = _entry({"rate": value, "nested": [value, {"v": value}]})
    assert not audit_chain._orjson_exact(tree.values())
    assert_canonical(tree)


def test_orjson_writes_floats_otherwise_so_the_guard_is_needed() -> None:
    assert fast({"v": 1e-5}) != reference({"v": 1e-5})
    assert fast({"v": float("nan")}) != reference({"v": float("nan")})
    assert fast({"v": float("inf")}) != reference({"v": float("inf")})


def test_deep_nesting_and_cycles_fall_back_to_json_dumps() -> None:
    deep = _entry(_nest(600))
    assert not audit_chain._orjson_exact(deep.values())
    assert_canonical(deep)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        audit_chain.canonical_json(_entry(cycle))


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Status(enum.StrEnum):
    OPEN = "open"


class Text(str):
    __slots__ = ()


class Number(int):
    pass


class Bag(dict[str, Any]):
    pass


class Items(list[Any]):
    pass


@dataclasses.dataclass
class Point:
    x: int


# json.dumps writes these (as str, int, dict, list or with converted keys): the digest must
# give the same bytes although orjson would write some of them otherwise or refuse them.
ACCEPTED: list[Any] = [
    Level.HIGH,
    Status.OPEN,
    Text("text"),
    Number(5),
    Bag(b=1, a=2),
    Items([1, "x"]),
    (1, "tuple", None),
    {1: "int key", 2: "other"},
    {None: 1},
    {True: 1, False: 0},
    {1.5: "float key"},
    {Text("b"): 1, Text("a"): 2},
    {Status.OPEN: 1},
]
# json.dumps refuses these: the digest must refuse them too, with the same error.
REFUSED: list[Any] = [
    Color.RED,
    uuid.UUID(int=1),
    datetime(2026, 1, 1, tzinfo=UTC),
    date(2026, 1, 1),
    Point(1),
    Decimal("1.5"),
    b"bytes",
    {1, 2},
    orjson.Fragment(b'{"a":1}'),
    {"a": 1, 2: "mixed keys"},
    {(1, 2): "tuple key"},
    "lone \ud800 surrogate",
    {"lone \udfff": 1},
]


@pytest.mark.parametrize("value", ACCEPTED, ids=short)
def test_subclasses_enums_tuples_and_other_keys_are_written_as_json_dumps_does(
    value: Any,
) -> None:
    assert_canonical(_entry(value))
    assert_canonical(_entry({"nested": [value]}))


@pytest.mark.parametrize("value", REFUSED, ids=short)
def test_what_json_dumps_refuses_is_refused_alike(value: Any) -> None:
    tree = _entry({"nested": [value]})
    with pytest.raises((TypeError, ValueError)) as expected:
        reference(tree)
    with pytest.raises(type(expected.value)) as actual:
        audit_chain.canonical_json(tree)
    assert str(actual.value) == str(expected.value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


@BOUNDED
@given(value=json_values)
def test_any_json_value_is_written_as_json_dumps_does(value: Any) -> None:
    assert_canonical(_entry(value))


# -- real audit rows ---------------------------------------------------------------------


def _rows() -> list[tuple[dict[str, Any], str]]:
    """Audit rows as the sealer reads them (jsonb decoded by orjson, created_at a datetime),
    with the digests the json.dumps form gave them: taken from a test database after the
    API created a merchant, confirmed, captured and refunded a payment with a unicode
    description and metadata, made a second payment and a customer, and SQL inserted
    customers whose names hold control characters, U+2029, quotes and backslashes."""
    rows = []
    for row in json.loads(ROWS.read_text()):
        entry = dict(row["entry"])
        entry["created_at"] = datetime.fromisoformat(entry["created_at"])
        entry["redacted_at"] = None
        rows.append((entry, row["digest"]))
    return rows


def test_real_rows_keep_the_digests_json_dumps_gave_them() -> None:
    rows = _rows()
    assert {entry["object_type"] for entry, _ in rows} >= {"payment", "refund", "customer"}
    for entry, sealed_digest in rows:
        recorded = {
            field: audit_chain._plain(entry[field]) for field in audit_chain.RECORDED_FIELDS
        }
        assert audit_chain._orjson_exact(recorded.values()), entry["id"]
        assert fast(recorded) == reference(recorded), entry["id"]
        assert audit_chain.digest(entry).hex() == sealed_digest, entry["id"]


def _sealed_chain() -> tuple[list[dict[str, Any]], audit_chain.Seal]:
    entries = [entry for entry, _ in _rows()]
    return entries, audit_chain.seal_batch(1, audit_chain.GENESIS, entries)


def _legacy_chain(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows sealed one by one, as before migration 0011."""
    prev_hash, chain = audit_chain.GENESIS, []
    for seq, entry in enumerate(entries, start=1):
        entry_digest = audit_chain.digest(entry)
        entry_hash = audit_chain.link(prev_hash, entry_digest)
        chain.append(
            {
                **entry,
                "seq": seq,
                "digest": entry_digest,
                "prev_hash": prev_hash,
                "hash": entry_hash,
            }
        )
        prev_hash = entry_hash
    return chain


TAMPERING = [
    ("after", "description", "Mallory"),
    ("after", "amount", 4201),
    ("after", "amount", 4200.0),  # equal in Python, not in the log
    ("after", "amount", "4200"),
    ("after", "livemode", 0),
    ("after", "metadata", {"order": "ord_\u00fc\u00df"}),
    ("after", "payment_method_types", ["card", "card"]),
    ("after", "mandate_data", {}),
]


@pytest.mark.parametrize(("column", "key", "value"), TAMPERING, ids=repr)
def test_a_changed_row_still_fails_verification(column: str, key: str, value: Any) -> None:
    entries, seal = _sealed_chain()
    legacy = _legacy_chain(entries)
    assert audit_chain.broken_seal(seal, entries, (1, audit_chain.GENESIS), 1) is None
    assert audit_chain.first_broken_link(legacy) is None

    victim = next(i for i, e in enumerate(entries) if e["action"] == "payment.updated")
    changed = {**entries[victim], column: {**entries[victim][column], key: value}}
    broken = audit_chain.broken_seal(
        seal, [*entries[:victim], changed, *entries[victim + 1 :]], (1, audit_chain.GENESIS), 1
    )
    assert broken is not None and "content" in broken.reason
    assert (broken.entry_id, broken.seq) == (changed["id"], victim + 1)
    legacy[victim] = {**legacy[victim], column: changed[column]}
    broken = audit_chain.first_broken_link(legacy)
    assert broken is not None and (broken.entry_id, broken.seq) == (changed["id"], victim + 1)


@pytest.mark.parametrize("field", audit_chain.RECORDED_FIELDS)
def test_every_recorded_field_is_covered(field: str) -> None:
    entries, seal = _sealed_chain()
    victim = 7
    value = entries[victim][field]
    changed = {**entries[victim], field: f"{value}!" if isinstance(value, str) else "changed"}
    broken = audit_chain.broken_seal(
        seal, [*entries[:victim], changed, *entries[victim + 1 :]], (1, audit_chain.GENESIS), 1
    )
    assert broken is not None and broken.seq == victim + 1
