"""The body as JavaScript's JSON.stringify(JSON.parse(body)) writes it: what Fincra and Paystack's sample sign."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhooks.providers import base
from webhooks.providers.base import js_number, js_stringify

# Bodies as a provider might send them (pretty-printed, odd numbers, repeated and integer-like keys),
# each with what Node's JSON.stringify(JSON.parse(body)) writes.
CASES = [
    ('{ "a" : 1.50 , "b" : [ 1e2 , -0 , 0.0 ] }', '{"a":1.5,"b":[100,0,0]}'),
    ('{"amount": 101.51, "fee": 1.0, "big": 1e21, "bigger": 123456789012345678901234}', None),
    ('{"x": 0.000001, "y": 0.0000001, "z": 1E-7, "w": 123e-20, "v": 5e-324}', None),
    ('{"int": 12345678901234567890, "exp": 1.7976931348623157e308, "inf": 1e400}', None),
    ('{"z": 1, "10": "ten", "2": "two", "a": 3, "01": "not an index", "-1": "neg", "4294967295": "max"}', None),
    ('{"k": 1, "k": 2, "j": 3}', '{"k":2,"j":3}'),
    ('{"name": "Ada \\u00e9 é ₦ 😀 \\ud83d\\ude00", "nl": "a\\nb\\t\\u0001\\u001f\\u007f\\u2028"}', None),
    ('{"quote": "\\"\\\\\\/", "lone": "\\ud800x", "nested": {"deep": [true, false, null, {}, []]}}', None),
    # Around the fast path's limits (2**53, 1e-4, 1e16): each side of every bound.
    ('{"a": 9007199254740991, "b": 9007199254740993, "c": -9007199254740993, "d": 9007199254740992.0}', None),
    ('{"a": 0.0001, "b": 0.00009999, "c": 0.00001, "d": 9999999999999998.5, "e": 1e16, "f": 123.456}', None),
    ('{"\\udc00": 1, "k\\u0000": "\\u0000"}', None),
]


@pytest.mark.parametrize(("body", "expected"), [case for case in CASES if case[1] is not None])
def test_known_outputs(body, expected):
    assert js_stringify(body.encode()) == expected.encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (100.0, "100"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456789012345678901234.0, "1.2345678901234569e+23"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.23e-18, "1.23e-18"),
        (-2.5, "-2.5"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (float("inf"), "null"),
    ],
)
def test_numbers_as_javascript_writes_them(value, text):
    assert js_number(value) == text


def test_integer_like_keys_come_first_in_ascending_order():
    body = b'{"z":1,"10":"ten","2":"two","a":3,"01":"x","-1":"y"}'
    assert js_stringify(body) == b'{"2":"two","10":"ten","z":1,"a":3,"01":"x","-1":"y"}'


def test_non_ascii_as_is_and_control_characters_escaped():
    body = '{"s": "₦ é 😀 \\u0001 \\n \\ud800"}'.encode()
    assert js_stringify(body) == '{"s":"₦ é 😀 \\u0001 \\n \\ud800"}'.encode()


@pytest.mark.parametrize("body", [b"{", b'{"a": NaN}', b"\xff{}", b"[" * 100_000])
def test_what_json_parse_refuses_has_no_stringified_form(body):
    assert js_stringify(body) is None


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.parametrize("body", [case[0] for case in CASES])
def test_same_bytes_as_node(body):
    """Differential check against the real JSON.stringify when Node.js is available."""
    script = (
        "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(JSON.stringify(JSON.parse(s))))"
    )
    node = subprocess.run(["node", "-e", script], input=body.encode(), capture_output=True, check=True, timeout=30)
    assert js_stringify(body.encode()) == node.stdout


def test_fixture_compact_form_is_python_compact_json():
    payload = {"event": "collection.successful", "data": {"amountReceived": 99, "name": "Ọlá"}}
    assert (
        js_stringify(json.dumps(payload, indent=2).encode())
        == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    )


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_json_values, indent=st.sampled_from([None, 2]))
def test_fast_path_writes_what_the_careful_writer_writes(value, indent):
    """The C-encoder path must agree with the careful writer (checked against Node above) on every input."""
    body = json.dumps({"v": value}, indent=indent).encode()  # ASCII: lone surrogates travel escaped
    parsed = json.loads(body, parse_float=float, parse_int=float, object_pairs_hook=base._js_object)
    careful: list[str] = []
    base._js_write(parsed, careful)
    assert js_stringify(body) == "".join(careful).encode()
