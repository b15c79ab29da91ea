"""Text ops on string tensors against onnx.reference, onnxruntime and Python's re:
StringConcat, StringSplit, StringNormalizer, RegexFullMatch, TfIdfVectorizer and Equal on
strings; plus the clean errors (unsupported patterns and locales, invalid UTF-8, inputs
too large)."""

from __future__ import annotations

import json
import re
import time
import unicodedata

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError, UnsupportedOpError
from wasmexport.packager import package
from wasmexport.packager.text_checks import regex_problem

S, B, F = TensorProto.STRING, TensorProto.BOOL, TensorProto.FLOAT
I32, I64 = TensorProto.INT32, TensorProto.INT64


def text_model(op, inputs, outputs, opset=20, **attrs):
    """A one-node model: inputs and outputs are (name, dtype) pairs, shapes left open."""
    node = helper.make_node(op, [n for n, _ in inputs], [n for n, _ in outputs],
                            name=f"{op.lower()}0", **attrs)  # fmt: skip
    graph = helper.make_graph(
        [node], "text",
        [helper.make_tensor_value_info(n, t, None) for n, t in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def multi_model(op, input_dtype, outputs, attr_sets, opset=20):
    """One input "x" feeding one op node per attribute set; outputs are (suffix, dtype)
    pairs per node. Packaging and loading one module for many cases keeps tests fast."""
    nodes, outs = [], []
    for k, attrs in enumerate(attr_sets):
        names = [f"{suffix}{k}" for suffix, _ in outputs]
        nodes.append(helper.make_node(op, ["x"], names, name=f"{op.lower()}{k}", **attrs))
        outs += [helper.make_tensor_value_info(n, t, None)
                 for n, (_, t) in zip(names, outputs, strict=True)]  # fmt: skip
    graph = helper.make_graph(
        nodes, "text", [helper.make_tensor_value_info("x", input_dtype, None)], outs
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def wasm_outputs(model, *arrays):
    """Outputs of the packaged model (always a list)."""
    with load(package(model).wasm) as module:
        got = module.run(list(arrays) if len(arrays) > 1 else arrays[0])
    return got if isinstance(got, list) else [got]


def assert_same(got, expected, where=""):
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{where}: shape {got.shape} vs {expected.shape}"
    if expected.dtype == object:
        assert got.tolist() == expected.tolist(), where
    else:
        assert got.dtype == expected.dtype, f"{where}: {got.dtype} vs {expected.dtype}"
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=where)


def check_against_reference(model, *arrays):
    expected = ReferenceEvaluator(model).run(None, dict(zip(
        [i.name for i in model.graph.input], arrays, strict=True)))  # fmt: skip
    got = wasm_outputs(model, *arrays)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert_same(g, e, f"output {i}")


def strings(*values, shape=None):
    a = np.array(values, dtype=object)
    return a.reshape(shape) if shape is not None else a


# ---- StringConcat and Equal -----------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (strings("abc", "", "é"), strings("d", "e", "中")),
        (strings("cat", "dog", "a", "b", shape=(2, 2)), strings("s", "!")),
        (strings("x", shape=()), strings("1", "2", "3")),
        (strings(shape=(0,)), strings("s")),
    ],
)
def test_string_concat_matches_reference(x, y):
    model = text_model("StringConcat", [("x", S), ("y", S)], [("z", S)])
    check_against_reference(model, x, y)


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (strings("a", "b", "", "é"), strings("a", "c", "", "e")),
        (strings("a", "b", "a", "c", shape=(2, 2)), strings("a", "c")),
        (strings("ab", shape=(1, 1)), strings("ab", "a", "abc")),
    ],
)
def test_equal_strings_matches_numpy(x, y):
    model = text_model("Equal", [("x", S), ("y", S)], [("z", B)], opset=19)
    (got,) = wasm_outputs(model, x, y)
    assert_same(got, np.asarray(x == y))


# ---- StringSplit ----------------------------------------------------------------------

SPLIT_TEXT = strings(
    "hello world", "  lead and trail  ", "", "a\tb\nc\x0bd\x0ce\rf", "no-spaces",
    "x\xa0y\u3000z\u2028w", "a--b---c-", "--", "one", "é é", shape=(2, 5),
)  # fmt: skip


def test_string_split_matches_reference():
    attr_sets = [
        {k: v for k, v in (("delimiter", delimiter), ("maxsplit", maxsplit)) if v is not None}
        for delimiter in (None, "", "-", "--", " ", "é")
        for maxsplit in (None, 0, 1, 2, -1)
    ]
    model = multi_model("StringSplit", S, [("y", S), ("n", I64)], attr_sets)
    check_against_reference(model, SPLIT_TEXT)
    check_against_reference(model, strings("", "   ", "a b"))


def test_string_split_scalar():
    # a scalar string travels as a (1,) input squeezed inside the model
    split = helper.make_node("StringSplit", ["s"], ["y", "n"], delimiter=",")
    graph = helper.make_graph(
        [helper.make_node("Squeeze", ["x", "axes"], ["s"]), split], "text",
        [helper.make_tensor_value_info("x", S, [1])],
        [helper.make_tensor_value_info("y", S, None),
         helper.make_tensor_value_info("n", I64, None)],
        [helper.make_tensor("axes", I64, [1], [0])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    y, n = wasm_outputs(model, strings("a,b,,c"))
    assert y.tolist() == ["a", "b", "", "c"] and n.shape == () and int(n) == 4


# ---- StringNormalizer -----------------------------------------------------------------

NORM_TEXT = strings("Monday", "monday", "MONDAY", "Tuesday", "x y", "", "wed", "A1_b")


def test_string_normalizer_matches_onnxruntime():
    attr_sets = []
    for action in ("NONE", "LOWER", "UPPER"):
        for case_sensitive in (0, 1):
            for stopwords in (None, ["monday", "Wed"], ["x y", ""]):
                attrs = {"case_change_action": action, "is_case_sensitive": case_sensitive}
                attr_sets.append(dict(attrs, stopwords=stopwords) if stopwords else attrs)
    # onnxruntime builds the default locale only where it is installed: "C" always works
    # and changes ASCII letters, as the runtime's default locale does on ASCII text
    reference = multi_model("StringNormalizer", S, [("y", S)],
                            [dict(a, locale="C") for a in attr_sets], opset=10)  # fmt: skip
    session = ort.InferenceSession(reference.SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    default = multi_model("StringNormalizer", S, [("y", S)], attr_sets, opset=10)
    for model in (reference, default):
        with load(package(model).wasm) as module:
            for x in (NORM_TEXT, NORM_TEXT.reshape(1, -1)):
                expected = session.run(None, {"x": x})
                for k, got in enumerate(module.run(x)):
                    assert_same(got, expected[k], f"{attr_sets[k]}, shape {x.shape}")


def _simple_case(text: str, upper: bool) -> str:
    """Python's case mapping one code point at a time, where it yields one code point."""
    out = []
    for c in text:
        m = c.upper() if upper else c.lower()
        out.append(m if len(m) == 1 else c)
    return "".join(out)


def test_string_normalizer_unicode_case_mappings():
    words = ["Ça été ÉTÉ", "straße ǅ ÿ Ÿ µ", "Ωμέγα ΣΟΦΊΑ ς", "Привет МИР ё", "Ǉub ǈ",
             "ﬁ ﬀ", "Kelvin K Ω Å", "ⓐⓑ Ⓒ", "𐐨𐐀 Ａｂ", "中文 ok"]  # fmt: skip
    attr_sets = [{"case_change_action": "UPPER"}, {"case_change_action": "LOWER"}]
    model = multi_model("StringNormalizer", S, [("y", S)], attr_sets, opset=10)
    upper, lower = wasm_outputs(model, np.array(words, dtype=object))
    assert upper.tolist() == [_simple_case(w, True) for w in words]
    assert lower.tolist() == [_simple_case(w, False) for w in words]


def test_case_table_is_generated_from_unicode_data():
    # the generator lives in the source tree only, not in the wheel
    gen_case_table = pytest.importorskip("wasmexport.abi_runtime.tools.gen_case_table")
    header = gen_case_table.OUT.read_text()
    if f"Unicode {unicodedata.unidata_version}" not in header:
        pytest.skip(f"this Python has Unicode {unicodedata.unidata_version}")
    assert header == gen_case_table.render()


def test_string_normalizer_case_insensitive_unicode_stopwords():
    model = text_model("StringNormalizer", [("x", S)], [("y", S)], opset=10,
                       case_change_action="NONE", stopwords=["ÉTÉ"])  # fmt: skip
    (got,) = wasm_outputs(model, strings("été", "Été", "ete", "ÉTÉS"))
    assert got.tolist() == ["ete", "ÉTÉS"]


def test_string_normalizer_all_stopwords_give_one_empty_string():
    model = text_model("StringNormalizer", [("x", S)], [("y", S)], opset=10,
                       stopwords=["a", "b"])  # fmt: skip
    with load(package(model).wasm) as module:
        for shape, out_shape in (((3,), (1,)), ((1, 3), (1, 1))):
            got = module.run(strings("a", "B", "a", shape=shape))
            assert got.shape == out_shape and got.ravel().tolist() == [""]


# ---- RegexFullMatch -------------------------------------------------------------------

# (pattern, texts); expected values come from re.fullmatch with re.ASCII (RE2's \w \d \s
# \b are ASCII; \z is Python's \Z); texts avoid \v and "\n" before $, where the two differ
REGEX_TABLE = [
    (r"www\.[\w.-]+\.\bcom\b", ["www.google.com", "www.bbc.co.uk", "www..com", "www.a.com."]),
    (
        r"(\W|^)[\w.\-]{0,25}@(yahoo|gmail)\.com(\W|$)",
        ["account@gmail.com", " a@yahoo.com!", "a@hotmail.com", "x" * 26 + "@gmail.com"],
    ),
    (r"a*b", ["b", "aaab", "aaba", ""]),
    (r"(a|ab)(c|bcd)(d*)", ["abcd", "acd", "abcdd", "abd"]),
    (r"[^a-c]+", ["xyz", "xaz", "é中", ""]),
    (r"[]a]+|[a-]", ["]a]", "-", "a", "b"]),
    (r"\d{2,4}-\d{3}", ["12-345", "12345-678", "1-234", "1234-56"]),
    (r"\s*\S+\s*", ["  word\t", "two words", "\n\r x"]),
    (r"(?:ab)+?c?", ["abab", "ababc", "abc", "aba"]),
    (r"(?P<y>\d{4})-(?P<m>\d\d)", ["2024-01", "24-01"]),
    (r"\Aab\z|x", ["ab", "x", "abx"]),
    (r"\Bb\B|\bb\b", ["b", "abc"]),
    (r".+\.txt", ["a.txt", ".txt", "a\n.txt", "é.txt"]),
    (r"[\d\s_]*", ["1 2_3", "1a"]),
    (r"\x41\t[\x61-\x63]", ["A\ta", "A\td"]),
    (r"a{3}b{2,}c{0}", ["aaabb", "aaabbbb", "aabb", "aaab"]),
    (r"(a*)*b", ["aaaab", "aaaa"]),
    (r"", ["", "a"]),
    (r"a|", ["", "a", "b"]),
    (r"中+文?", ["中中", "中文", "文"]),
    (r"a{,3}x|\{", ["{"]),
]


def _python_pattern(pattern: str) -> str:
    return pattern.replace(r"\z", r"\Z")


def _match_python(pattern: str, texts: list[str]) -> list[bool]:
    rx = re.compile(_python_pattern(pattern), re.ASCII)
    return [rx.fullmatch(t) is not None for t in texts]


def _regex_model(patterns):
    return multi_model("RegexFullMatch", S, [("y", B)], [{"pattern": p} for p in patterns])


def test_regex_full_match_matches_python():
    # every pattern of the table runs on every text of the table
    patterns = [p for p, _ in REGEX_TABLE[:-1]]
    texts = sorted({t for _, ts in REGEX_TABLE for t in ts})
    for p in patterns:
        assert regex_problem(p) is None, p
    got = wasm_outputs(_regex_model(patterns), np.array(texts, dtype=object))
    for p, g in zip(patterns, got, strict=True):
        assert g.tolist() == _match_python(p, texts), p


def test_regex_unsupported_count_form_is_refused():
    # Python reads {,3} as {0,3} and RE2 as text: refused rather than guessed
    assert "{,3}" in regex_problem(REGEX_TABLE[-1][0])


HYPOTHESIS_PATTERNS = [
    (r"(a|b)*abb", "ab"),
    (r"[a-c]{1,3}(x|yz)?\d*", "abcxyz019"),
    (r"(\w+\s?)+\.", "ab _.1"),
    (r"((ab)*|c+)d?", "abcd"),
    (r"[^ab]+b|\bab\b.", "ab .-"),
]


@pytest.fixture(scope="module")
def hypothesis_module():
    with load(package(_regex_model([p for p, _ in HYPOTHESIS_PATTERNS])).wasm) as module:
        yield module


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_regex_full_match_hypothesis(hypothesis_module, data):
    alphabet = "".join(sorted({c for _, a in HYPOTHESIS_PATTERNS for c in a}))
    texts = data.draw(st.lists(st.text(alphabet, max_size=10), min_size=1, max_size=40))
    got = hypothesis_module.run(np.array(texts, dtype=object))
    for (p, _), g in zip(HYPOTHESIS_PATTERNS, got, strict=True):
        assert g.tolist() == _match_python(p, texts), p


@pytest.mark.parametrize(
    ("pattern", "construct"),
    [
        ("(?i)abc", "(? group"),
        ("a(?=b)", "(? group"),
        (r"(a)\1", "backreference"),
        (r"\pL+", "Unicode class"),
        ("[[:alpha:]]", "POSIX class"),
        ("a{1001}", "at most 1000"),
        ("a**", "repetition * of a repetition"),
        ("*a", "without an operand"),
        ("(ab", "without its closing )"),
        ("ab)", "unmatched )"),
        ("[ab", "closing ]"),
        (r"\Qa.b\E", "quoting"),
        (r"a\Z", r"\Z"),
        (r"\x{41}", r"\x{...}"),
        (r"\k", "unknown escape"),
        ("[b-a]", "bad character range"),
    ],
)
def test_regex_unsupported_syntax_is_refused_at_export(pattern, construct):
    model = text_model("RegexFullMatch", [("x", S)], [("y", B)], pattern=pattern)
    with pytest.raises(UnsupportedOpError, match=re.escape(construct)):
        package(model)


def test_regex_unsupported_syntax_is_refused_by_the_runtime(monkeypatch):
    # the runtime's own parser refuses what the export-time check would have caught
    monkeypatch.setattr("wasmexport.packager.support.check_text_node", lambda node, opset: 0)
    for pattern, why in (
        ("(?i)abc", "(? groups"),
        ("a{2,1}", "bad repetition count"),
        ("a" * 5000, "pattern too long"),
        ("[[:alpha:]]", "POSIX"),
    ):
        with pytest.raises(RuntimeABIError, match=re.escape(why)):
            with load(package(_regex_model([pattern])).wasm) as module:
                module.run(strings("abc"))


def test_regex_pathological_pattern_runs_in_linear_time():
    texts = np.array(["a" * 20000, "a" * 20000 + "b"], dtype=object)
    model = _regex_model([r"(a|aa)*(a*)*c", r"(a|aa)*(a*)*b"])
    with load(package(model).wasm) as module:
        start = time.perf_counter()
        c, b = module.run(texts)
        assert time.perf_counter() - start < 20  # backtracking would take forever
    assert c.tolist() == [False, False] and b.tolist() == [False, True]


# ---- TfIdfVectorizer ------------------------------------------------------------------

INT_POOL = {
    "ngram_counts": [0, 4, 10],
    "pool_int64s": [2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 5, 6, 7],
    "ngram_indexes": [0, 1, 2, 3, 4, 5, 6, 3],
}
STR_POOL = {
    "ngram_counts": [0, 3],
    "pool_strings": ["the", "cat", "sat", "the", "cat", "cat", "sat"],
    "ngram_indexes": [2, 0, 1, 3, 4],
}


def _onnxruntime_outputs(model, x):
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    return session.run(None, {"x": x})


def test_tfidf_int_pool_matches_reference_and_onnxruntime():
    # onnxruntime (and the spec) weigh each n-gram of the pool, the reference weighs output
    # columns and fails without weights in IDF and TFIDF modes: TF also runs the reference
    attr_sets = [
        dict(INT_POOL, mode=mode, min_gram_length=lo, max_gram_length=hi, max_skip_count=skip,
             **({"weights": [0.5, 1.0, 2.0, 0.25, 3.0, 1.5, 0.75, 2.5]} if weighted else {}))
        for mode in ("TF", "IDF", "TFIDF")
        for lo, hi, skip in ((1, 1, 0), (1, 3, 2), (2, 3, 1), (3, 3, 0))
        for weighted in (False, True)
    ]  # fmt: skip
    x = np.array([[1, 2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 5, 6, 7], [5, 6, 7, 5, 6, 7, 2, 2, 3,
                  5, 4, 8, 6, 7]], dtype=np.int64)  # fmt: skip
    tf = [a for a in attr_sets if a["mode"] == "TF" and "weights" not in a]
    check_against_reference(multi_model("TfIdfVectorizer", I64, [("y", F)], tf, 9), x)
    check_against_reference(multi_model("TfIdfVectorizer", I32, [("y", F)], tf, 9),
                            x[1].astype(np.int32))  # fmt: skip
    model = multi_model("TfIdfVectorizer", I64, [("y", F)], attr_sets, 9)
    for k, (g, e) in enumerate(zip(wasm_outputs(model, x), _onnxruntime_outputs(model, x),
                                   strict=True)):  # fmt: skip
        assert_same(g, e, str(attr_sets[k]))


def test_tfidf_string_pool_matches_onnxruntime():
    attr_sets = [
        dict(STR_POOL, mode=mode, min_gram_length=1, max_gram_length=2, max_skip_count=skip,
             weights=[1.0, 2.0, 0.5, 3.0, 1.5])
        for mode in ("TF", "IDF", "TFIDF")
        for skip in (0, 1)
    ]  # fmt: skip
    model = multi_model("TfIdfVectorizer", S, [("y", F)], attr_sets, opset=9)
    x = strings("the", "cat", "the", "cat", "sat", "dog", "cat", "x", "sat", "the",
                shape=(2, 5))  # fmt: skip
    expected = _onnxruntime_outputs(model, x)
    for k, (g, e) in enumerate(zip(wasm_outputs(model, x), expected, strict=True)):
        assert_same(g, e, str(attr_sets[k]))


def test_tfidf_bad_pool_is_refused_at_export():
    attrs = dict(INT_POOL, mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
                 weights=[1.0, 2.0])  # fmt: skip
    model = text_model("TfIdfVectorizer", [("x", I64)], [("y", F)], opset=9, **attrs)
    with pytest.raises(UnsupportedOpError, match="weights has 2 values"):
        package(model)


def test_tfidf_wrong_input_dtype_is_a_clean_error():
    attrs = dict(INT_POOL, mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0)
    model = text_model("TfIdfVectorizer", [("x", S)], [("y", F)], opset=9, **attrs)
    with pytest.raises((UnsupportedOpError, RuntimeABIError), match="string"):
        wasm_outputs(model, strings("a", "b"))


# ---- clean errors ---------------------------------------------------------------------


def test_string_normalizer_turkic_locale_is_refused():
    model = text_model("StringNormalizer", [("x", S)], [("y", S)], opset=10,
                       case_change_action="UPPER", locale="tr_TR.UTF-8")  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="locale 'tr_TR.UTF-8'"):
        package(model)


def _json_request(values: list[bytes]) -> bytes:
    """A JSON request whose strings carry the given bytes as they are (even invalid UTF-8)."""
    return b'{"input": [' + b", ".join(b'"' + v + b'"' for v in values) + b"]}"


def test_invalid_utf8_is_a_clean_error():
    ops = [
        ("RegexFullMatch", {"pattern": "a.*"}, 20),
        ("StringNormalizer", {"case_change_action": "UPPER"}, 10),
        ("StringSplit", {}, 20),
    ]
    for op, attrs, opset in ops:
        outputs = [("y", B if op == "RegexFullMatch" else S)]
        outputs += [("n", I64)] if op == "StringSplit" else []
        model = text_model(op, [("x", S)], outputs, opset=opset, **attrs)
        with load(package(model).wasm) as module:
            for bad in (
                b"a\xc3(b",
                b"\xff",
                b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80",
                b"\xc0\xaf",
            ):
                rc, text = module.request(_json_request([b"ok", bad]))
                assert rc == 1, (op, bad)
                assert "element 1 is not valid UTF-8" in json.loads(text)["error"], (op, bad)
            rc, _ = module.request(_json_request([b"fine \xc3\xa9 \xf0\x9f\x98\x80"]))
            assert rc == 0, op


def test_string_split_too_large_output_is_a_clean_error():
    model = text_model("StringSplit", [("x", S)], [("y", S), ("n", I64)], delimiter=",")
    x = np.array(["," * 600000] + ["a"] * 1000, dtype=object)  # (1001, 600001) pieces
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match="too large|out of memory"):
            module.run(x)
        # the module keeps working after the error
        got = module.run(strings("a,b", "c"))
        assert got[0].tolist() == [["a", "b"], ["c", ""]]
