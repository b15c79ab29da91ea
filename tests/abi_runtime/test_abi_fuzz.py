"""Fuzzing the ABI: generated and mutated requests, and corrupted plans.

Every request, however broken, must get pred() in {0, 1}, a strict-JSON one-line response
whose form matches the code ({"output": ...} for 0, {"error": "..."} for 1), a response
length that agrees with its NUL, no trap, and no memory growth; the instance keeps working.

    WX_FUZZ_REQUESTS   requests in total over both modules (default 100000: about two
                       minutes at ~750-1,100 requests/s; lower it for a quick local run)
    WX_FUZZ_PLANS      corrupted plans to load (default 24, ~0.5 s each to compile)
    WX_FUZZ_RANDOM=1   fresh random examples instead of the fixed, reproducible ones
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import time

import numpy as np
import pytest
import wasmtime
from abi_helpers import Raw, strict_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_helpers import FLOAT, INT64, make_model
from onnx import helper, numpy_helper

from wasmexport.packager import package
from wasmexport.packager.embed import embed_blob
from wasmexport.packager.lower import lower
from wasmexport.packager.runtime_info import runtime_bytes

logger = logging.getLogger(__name__)

TOTAL_REQUESTS = int(os.environ.get("WX_FUZZ_REQUESTS", "100000"))
PLANS = int(os.environ.get("WX_FUZZ_PLANS", "24"))
DERANDOMIZE = os.environ.get("WX_FUZZ_RANDOM", "") != "1"
PER_EXAMPLE = 50  # requests derived from one hypothesis example

R = np.random.default_rng(17)
W = R.standard_normal((4, 3)).astype(np.float32)
TABLE = R.standard_normal((5, 3)).astype(np.float32)


def mlp_model():
    return make_model(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Tanh", ["h"], ["y"]),
        ],
        [("x", FLOAT, ["batch", 4])],
        [("y", FLOAT, ["batch", 3])],
        {"w": W},
    )


def gather_model():
    return make_model(
        [
            helper.make_node("Gather", ["table", "idx"], ["rows"], axis=0),
            helper.make_node("Shape", ["table"], ["shape"]),
        ],
        [("idx", INT64, ["n"]), ("table", FLOAT, ["rows", 3])],
        [("rows", FLOAT, ["n", 3]), ("shape", INT64, [2])],
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pb(a: np.ndarray) -> str:
    return b64(numpy_helper.from_array(a).SerializeToString())


def corpus_mlp() -> list[bytes]:
    x = R.standard_normal((2, 4)).astype(np.float32)
    forms = [
        {"input": x.tolist()},
        {"input": {"x": x.tolist()}, "output_type": "raw"},
        {"input": b64(x.tobytes()), "type": "raw", "shape": [2, 4]},
        {"input": b64(x.tobytes()), "type": "raw", "output_type": "pb"},
        {"input": pb(x)},
        {"input": [pb(x)], "type": "pb", "output_type": "raw"},
        {"input": [["NaN", "Infinity", "-Infinity", 1e-45]], "type": "json"},
    ]
    return [json.dumps(f).encode() for f in forms]


def corpus_gather() -> list[bytes]:
    idx = np.array([4, 0, 2], np.int64)
    forms = [
        {"input": [idx.tolist(), TABLE.tolist()]},
        {"input": {"table": TABLE.tolist(), "idx": [-1, 4]}},
        {
            "input": [b64(idx.tobytes()), b64(TABLE.tobytes())],
            "type": "raw",
            "shapes": [[3], [5, 3]],
            "output_type": "raw",
        },  # fmt: skip
        {"input": {"idx": pb(idx), "table": pb(TABLE)}, "output_type": "pb"},
        {"input": [pb(idx), pb(TABLE)], "type": "pb"},
    ]
    return [json.dumps(f).encode() for f in forms]


# ---- checking one response ----

RESPONSE_KEYS = (
    {"output"},
    {"output", "type", "shape", "dtype"},
    {"output", "type", "shapes", "dtypes"},
    {"output", "type"},
)


class Target:
    """One instance under fuzz: sends requests and checks every response."""

    def __init__(self, wasm: bytes, call_start: bool):
        self.raw = Raw(wasm, call_start=call_start)
        ex = self.raw.exports
        self.store, self.memory = self.raw.store, self.raw.memory
        self.fn = {k: ex[k] for k in ("malloc_buffer", "free_buffer", "pred", "get_out_loc",
                                      "get_out_len")}  # fmt: skip
        self.sent = 0
        self.ok = 0

    def send(self, data: bytes) -> int:
        s, fn = self.store, self.fn
        try:
            ptr = fn["malloc_buffer"](s, len(data) + 1)
            assert ptr, f"malloc_buffer({len(data) + 1}) failed"
            self.memory.write(s, data + b"\0", ptr)
            rc = fn["pred"](s)
            loc, n = fn["get_out_loc"](s), fn["get_out_len"](s)
            body = self.memory.read(s, loc, loc + n + 1)
            fn["free_buffer"](s, ptr)
        except wasmtime.WasmtimeError as e:  # a trap: the instance is dead
            raise AssertionError(f"trap on request {data[:300]!r}: {e}") from e
        self.check(data, rc, body)
        self.sent += 1
        self.ok += rc == 0
        return rc

    @staticmethod
    def check(data: bytes, rc: int, body: bytes) -> None:
        where = f"request {data[:200]!r}"
        assert body[-1:] == b"\0" and b"\0" not in body[:-1], f"{where}: length/NUL disagree"
        assert b"\n" not in body, f"{where}: response is not one line"
        try:
            response = strict_json(body[:-1])
        except ValueError as e:
            raise AssertionError(f"{where}: invalid response {body[:200]!r}: {e}") from e
        assert isinstance(response, dict), f"{where}: response is not an object"
        if rc == 0:
            assert set(response) in RESPONSE_KEYS, f"{where}: rc 0 with {body[:200]!r}"
        else:
            assert rc == 1, f"{where}: pred returned {rc}"
            assert set(response) == {"error"} and isinstance(response["error"], str)
            assert response["error"].startswith(("request: ", "node ", "runtime: ")), (
                f"{where}: error without a place: {response['error']}"
            )


# ---- generating requests ----

NAMES = ["input", "type", "shape", "shapes", "output_type", "x", "idx", "table", "inputType"]
WORDS = ["raw", "pb", "json", "NaN", "Infinity", "-Infinity", "", "AAAA", "AAAAAAAAAAA=",
         "AAAAAAAAAAAAAAAAAAAAAA==", "!!", "=AAA", "\ud800", "\u0000", "é"]  # fmt: skip
HUGE = [10**30, -(10**30), 2**63, -(2**63) - 1, 2**64, 2**53 + 1]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from(HUGE)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(WORDS)
    | st.binary(max_size=24).map(b64)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=24,
)
tensors = st.lists(
    st.lists(
        st.floats(width=32) | st.integers(-5, 5) | st.sampled_from(WORDS[3:6]), max_size=6
    ),
    max_size=5,
)
requests = (
    st.fixed_dictionaries(
        {},
        optional={
            "input": tensors | json_values | st.lists(tensors, max_size=3),
            "type": st.sampled_from(WORDS[:3]) | json_values,
            "shape": st.lists(st.integers(-2, 2**33), max_size=9) | json_values,
            "shapes": st.lists(st.lists(st.integers(-1, 6), max_size=3), max_size=3)
            | json_values,
            "output_type": st.sampled_from(WORDS[:3]) | json_values,
        },
    )
    | json_values
)

INSERTS = [b'"', b"[", b"]", b"{", b"}", b",", b":", b"\\", b"\\u", b"\0", b"\xff", b"\xc3",
           b"\xed\xa0\x80", b"9" * 80, b"-", b"e", b".", b"1e999", b'"NaN"', b"null", b"=",
           b"[" * 100, b'{"a":' * 70, b"AAAA", b" ", b"\t\n"]  # fmt: skip


LEAVES = [
    0,
    -1,
    1.5,
    2**63,
    -(2**63) - 1,
    10**40,
    1e308,
    "NaN",
    "-Infinity",
    "x",
    "",
    None,
    True,
    [],
    [[]],
    {},
    "AAAA",
    "AAAAAAAAAAAAAAAAAAAAAA==",
    [1, 2, 3, 4],
    [[0.5] * 4] * 3,
]


def mutate_value(data: bytes, rnd: random.Random) -> bytes:
    """Replace, drop or duplicate one element of a valid request's JSON structure, so that the
    request stays well-formed JSON and reaches the tensor checks."""
    value = json.loads(data)
    parent, key = None, None
    node = value
    while isinstance(node, (list, dict)) and node and rnd.random() < 0.8:
        parent = node
        key = rnd.randrange(len(node)) if isinstance(node, list) else rnd.choice(list(node))
        node = node[key]
    if parent is None:
        return json.dumps(rnd.choice(LEAVES)).encode()
    choice = rnd.randrange(3)
    if choice == 0:
        parent[key] = rnd.choice(LEAVES)
    elif choice == 1:
        del parent[key]
    elif isinstance(parent, list):
        parent.insert(key, node)
    else:
        parent[rnd.choice(["type", "shape", "shapes", "output_type", "x", "idx"])] = node
    return json.dumps(value).encode()


def mutate(data: bytes, rnd: random.Random, corpus: list[bytes]) -> bytes:
    """1-4 byte mutations: flips, truncation, insertion, deletion, duplication, splices."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(7)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1 and b:
            b[min(pos, len(b) - 1)] = rnd.randrange(256)
        elif op == 2:
            del b[pos:]
        elif op == 3:
            b[pos:pos] = rnd.choice(INSERTS)
        elif op == 4:
            del b[pos : pos + rnd.randint(1, 16)]
        elif op == 5:
            end = min(len(b), pos + rnd.randint(1, 64))
            b[pos:pos] = b[pos:end] * rnd.randint(1, 3)
        else:
            other = rnd.choice(corpus)
            b[pos:] = other[rnd.randrange(len(other) + 1) :]
    return bytes(b)


def specials() -> list[bytes]:
    """Hand-picked hostile requests: depth, length, huge numbers, bad UTF-8 and base64."""
    out = [b"", b" ", b"\0", b"\xef\xbb\xbf{}", b"{}", b"[]", b"null", b'"input"', b"{" * 5000]
    for depth in (63, 64, 65, 1000, 100000):
        out.append(b'{"input": ' + b"[" * depth + b"]" * depth + b"}")
        out.append(b'{"input": 1, "z": ' + b"[" * depth + b"]" * depth + b"}")
        out.append(b'{"input": ' + b'{"x":' * depth + b"1" + b"}" * depth + b"}")
    for number in (
        b"9" * 5000,
        b"-" + b"9" * 70,
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"0.0e0",
        b"18446744073709551616",
        b"-9223372036854775809",
        b"1.5e3",
        b"-0",
    ):
        out.append(b'{"input": [[' + number + b", 1, 2, 3]]}")
        out.append(b'{"input": [[' + number + b"], [[1, 2, 3]]]}")
        out.append(b'{"input": "AAAA", "type": "raw", "shape": [' + number + b", 4]}")
    long = b"A" * 200_000
    out += [
        b'{"input": "' + long + b'"}',
        b'{"input": "' + long + b'", "type": "raw"}',
        b'{"' + long + b'": 1, "input": [[1, 2, 3, 4]]}',
        b'{"input": [[1, 2, 3, 4]], "type": "' + long + b'"}',
        b'{"input": {"' + long + b'": 1}}',
        b'{"input": "\xff\xfe\xfd", "type": "raw"}',
        b'{"input": [[1, 2, 3, 4]], "type": "r\xc3\x28w"}',
        b'{"input": [[1, 2, 3, 4]], "type": "\\ud800\\udc00"}',
        b'{"input": "AA\\/A", "type": "raw"}',
        b'{"input": "AA==AA==", "type": "raw"}',
        b'{"input": "====", "type": "pb"}',
        b'{"input": "A", "type": "pb"}',
        b'{"input": ' + b"[1," * 300_000 + b"1" + b"]" * 300_000 + b"}",
        b'{"input": [' + b"1," * 100_000 + b"1]}",
    ]
    return out


# ---- the tests ----


@pytest.fixture(scope="module")
def targets():
    """The two modules under fuzz: one started as the ABI asks, one never started."""
    mlp = Target(package(mlp_model()).wasm, call_start=True)
    gather = Target(package(gather_model()).wasm, call_start=False)
    return [(mlp, corpus_mlp()), (gather, corpus_gather())]


def test_fuzz_corpus_is_valid(targets):
    for target, corpus in targets:
        for data in corpus:
            assert target.send(data) == 0, data


def test_fuzz_specials(targets):
    for target, _ in targets:
        for data in specials():
            target.send(data)


def test_fuzz_requests(targets):
    """Hypothesis draws a request (and a seed); each example sends it and PER_EXAMPLE - 1
    byte-level mutations of it and of the valid corpus. Memory must not grow."""
    examples = max(1, TOTAL_REQUESTS // (2 * PER_EXAMPLE))
    for target, corpus in targets:  # warm up: the largest valid requests and the specials
        for data in corpus * 3 + specials():
            target.send(data)
    pages = [t.raw.pages() for t, _ in targets]
    start, sent0 = time.perf_counter(), sum(t.sent for t, _ in targets)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(request=requests, seed=st.integers(0, 2**32 - 1), ascii_only=st.booleans())
    def one(request, seed, ascii_only):
        text = json.dumps(request, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        rnd = random.Random(seed)
        for target, corpus in targets:
            target.send(text)
            for k in range(PER_EXAMPLE - 1):
                base = text if k % 3 == 0 else rnd.choice(corpus)
                if k % 3 == 1:  # structure-aware: stays JSON, reaches the tensor checks
                    target.send(mutate_value(base, rnd))
                else:
                    target.send(mutate(base, rnd, corpus))

    one()
    seconds = time.perf_counter() - start
    sent = sum(t.sent for t, _ in targets) - sent0
    ok = sum(t.ok for t, _ in targets)
    logger.warning("fuzz: %d requests in %.1f s (%.0f/s), %d answered with output",
                   sent, seconds, sent / seconds, ok)  # fmt: skip
    assert sent >= min(TOTAL_REQUESTS, 2 * PER_EXAMPLE * examples) * 0.99
    assert [t.raw.pages() for t, _ in targets] == pages, "memory grew during the fuzz run"
    for target, corpus in targets:  # still answering correctly
        assert all(target.send(data) == 0 for data in corpus)


def corrupt(blob: bytes, rnd: random.Random) -> bytes:
    """A plan with a few flipped bytes (often in the header and tables), or truncated."""
    b = bytearray(blob)
    kind = rnd.randrange(4)
    if kind == 0:
        return bytes(b[: rnd.randrange(len(b))])
    for _ in range(rnd.randint(1, 3)):
        limit = 128 if kind == 1 else len(b)
        pos = rnd.randrange(min(limit, len(b)))
        b[pos] = rnd.randrange(256) if kind == 3 else b[pos] ^ (1 << rnd.randrange(8))
    return bytes(b)


def test_fuzz_corrupted_plans():
    """A corrupted plan is refused with {"error": "model: ..."} or runs to a valid response."""
    runtime = runtime_bytes()
    engine = wasmtime.Engine(_fast_compile())
    request = json.dumps({"input": [[1, 2, 3, 4], [5, 6, 7, 8]]}).encode()
    rnd = random.Random(1234)
    outcomes = {"refused": 0, "ran": 0, "run error": 0}
    for model in (mlp_model(), gather_model()):
        blob = lower(model)[0].to_bytes()
        if model.graph.input[0].name == "idx":
            request = json.dumps({"input": [[1, 0], TABLE.tolist()]}).encode()
        for _ in range(PLANS // 2):
            bad = corrupt(blob, rnd)
            m = Raw(embed_blob(runtime, bad, {}), call_start=rnd.random() < 0.5, engine=engine)
            for _ in range(2):  # the refusal sticks, and nothing traps on a second try
                try:
                    ptr = m.write(request)
                    rc = m.call("pred")
                    body = m.output()
                    m.call("free_buffer", ptr)
                except wasmtime.WasmtimeError as e:
                    raise AssertionError(f"trap with a corrupted plan: {e}") from e
                response = strict_json(body)
                if rc == 0:
                    assert "output" in response
                else:
                    assert rc == 1 and set(response) == {"error"}
            if rc == 0:
                outcomes["ran"] += 1
            elif response["error"].startswith("model: "):
                outcomes["refused"] += 1
            else:
                outcomes["run error"] += 1
    logger.warning("corrupted plans: %s", outcomes)
    assert outcomes["refused"] > 0


def _fast_compile() -> wasmtime.Config:
    config = wasmtime.Config()
    config.cranelift_opt_level = "none"
    return config
