"""Export-time checks of the text ops: RegexFullMatch patterns, StringNormalizer locales,
TfIdfVectorizer pools.

The runtime's regular-expression engine (abi_runtime/src/ops_regex.c) executes a subset of
RE2 syntax. ``regex_problem`` walks a pattern with the same grammar and names the first
construct outside that subset, so that an unsupported pattern is refused when the model is
packaged rather than when the module loads:

    supported   literals, ``.``, ``[...]`` / ``[^...]`` with ranges, ``\\d \\D \\w \\W \\s
                \\S`` (ASCII, as RE2), ``\\b \\B \\A \\z ^ $``, ``\\n \\t \\r \\f \\v \\a
                \\xHH``, escaped punctuation, ``( )``, ``(?: )``, ``(?P<n> )``, ``|``,
                ``* + ? {m} {m,} {m,n}`` (also lazy), counts up to 1000
    refused     flags ``(?i)``, lookaround, backreferences, ``\\p`` classes, POSIX
                ``[[:alpha:]]``, ``\\Q...\\E``, ``\\C``, ``\\Z``, ``{,n}``, ``\\x{...}``
"""

from __future__ import annotations

import re

import onnx

from .refusal import node_attr as _attr
from .refusal import refuse as _refuse

__all__ = ["MAX_REPEAT", "check_text_node", "regex_problem"]

MAX_REPEAT = 1000  # RE2's limit on {m,n} counts, also the runtime's
MAX_PATTERN_BYTES = 65536
_ESCAPE_CHARS = set("ntrfva")
_ESCAPE_CLASSES = set("dDwWsS")
_ESCAPE_ASSERTS = set("bBAz")
_COUNT = re.compile(r"\{(\d*)(,?)(\d*)\}")
# languages whose case mappings of i and I differ (dotted and dotless i)
_TURKIC = re.compile(r"^(tr|az)([_\-.@].*)?$")


def _escape_problem(pattern: str, i: int, in_class: bool) -> tuple[str | None, int]:
    """Check the escape at pattern[i] (after the backslash); (problem, next index)."""
    if i >= len(pattern):
        return "a trailing backslash", i
    c = pattern[i]
    if c in _ESCAPE_CHARS or c in _ESCAPE_CLASSES:
        return None, i + 1
    if c in _ESCAPE_ASSERTS:
        problem = f"the assertion \\{c} inside a character class" if in_class else None
        return problem, i + 1
    if c == "x":
        if re.fullmatch(r"[0-9A-Fa-f]{2}", pattern[i + 1 : i + 3]):
            return None, i + 3
        return "\\x without two hex digits (\\x{...} is not supported)", i + 1
    named = {
        "p": "the Unicode class \\p", "P": "the Unicode class \\P",
        "Q": "quoting with \\Q...\\E", "E": "quoting with \\Q...\\E",
        "C": "\\C (any byte)", "Z": "\\Z (use \\z or $)",
    }  # fmt: skip
    if c in named:
        return named[c], i + 1
    if c.isdigit():
        return f"the backreference or octal escape \\{c}", i + 1
    if c.isalnum() or not c.isascii():
        return f"the unknown escape \\{c}", i + 1
    return None, i + 1


def _class_problem(pattern: str, i: int) -> tuple[str | None, int]:
    """Check the class starting after '[' at i; (problem, index after the ']')."""
    i += pattern.startswith("^", i)
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            return None, i + 1
        if pattern.startswith("[:", i):
            return "the POSIX class [[:name:]]", i
        first = False
        if c == "\\":
            problem, i = _escape_problem(pattern, i + 1, in_class=True)
            if problem:
                return problem, i
        else:
            i += 1
    return "a character class without its closing ]", i


def regex_problem(pattern: str) -> str | None:
    """The first construct of pattern the runtime's engine refuses, or None.

    Also refuses patterns that are not well formed (unbalanced parentheses, a repetition
    without an operand, bad counts), naming the construct and its offset.
    """
    if len(pattern.encode("utf-8")) > MAX_PATTERN_BYTES:
        return f"a pattern longer than {MAX_PATTERN_BYTES} bytes"
    depth, i, can_repeat, repeated = 0, 0, False, False
    while i < len(pattern):
        c, at = pattern[i], i
        problem = None
        if c == "\\":
            problem, i = _escape_problem(pattern, i + 1, in_class=False)
            can_repeat, repeated = True, False
        elif c == "[":
            problem, i = _class_problem(pattern, i + 1)
            can_repeat, repeated = True, False
        elif c == "(":
            rest = pattern[i + 1 :]
            if rest.startswith("?:"):
                i += 3
            elif m := re.match(r"\?P?<([A-Za-z_][A-Za-z0-9_]*)>", rest):
                i += 1 + m.end()
            elif rest.startswith("?"):
                problem = "a (? group other than (?:...) and (?P<name>...) (flags, lookaround)"
            else:
                i += 1
            depth += 1
            can_repeat = False
        elif c == ")":
            depth -= 1
            if depth < 0:
                problem = "an unmatched )"
            i += 1
            can_repeat, repeated = True, False
        elif c in "*+?" or (c == "{" and _COUNT.match(pattern, i)):
            m = _COUNT.match(pattern, i) if c == "{" else None
            if m and not m.group(1) and m.group(3):
                problem = f"the count {m.group(0)} (write {{0,{m.group(3)}}})"
            elif m and not m.group(1):
                m = None  # '{' is a literal, as in RE2
            elif not can_repeat:
                problem = f"the repetition {c} without an operand"
            elif repeated:
                problem = f"the repetition {c} of a repetition"
            elif m and max(int(m.group(1)), int(m.group(3) or 0)) > MAX_REPEAT:
                problem = f"the count {m.group(0)} (at most {MAX_REPEAT})"
            elif m and m.group(3) and int(m.group(3)) < int(m.group(1)):
                problem = f"the count {m.group(0)} (max below min)"
            if m is None and c == "{":
                i += 1
                can_repeat, repeated = True, False
            else:
                i = m.end() if m else i + 1
                i += pattern.startswith("?", i)  # lazy
                repeated = True
        else:
            i += 1
            can_repeat = c not in "|^$"
            repeated = False
        if problem:
            return f"{problem} at offset {at}"
    if depth > 0:
        return "a ( without its closing )"
    # what the scan leaves to a parser (bad ranges such as [b-a]): Python's re, given the
    # RE2 spellings it lacks
    python = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern.replace("\\z", "\\Z"))
    try:
        re.compile(python)
    except re.error as e:
        return f"invalid syntax ({e.msg}) at offset {e.pos}"
    return None


def check_text_node(node: onnx.NodeProto, opset: int) -> None:
    """Refuse a text-op node whose attributes the runtime does not execute.

    Raises:
        UnsupportedOpError: naming the node, the attribute and what is supported.
    """
    op = node.op_type
    if op == "RegexFullMatch":
        pattern = _attr(node, "pattern", None)
        if pattern is None:
            raise _refuse(node, opset, "the attribute 'pattern' is missing")
        text = pattern.decode("utf-8", "replace")
        problem = regex_problem(text)
        if problem:
            raise _refuse(node, opset, f"pattern {text!r} uses {problem}, which the "
                          "runtime's regular-expression engine does not support")  # fmt: skip
    elif op == "StringNormalizer":
        locale = _attr(node, "locale", b"").decode("utf-8", "replace")
        if _TURKIC.match(locale):
            raise _refuse(node, opset, f"locale {locale!r} is not supported (Turkic "
                          "dotted/dotless i casing); use en_US or C")  # fmt: skip
    elif op == "TfIdfVectorizer":
        ints = _attr(node, "pool_int64s", [])
        strings = _attr(node, "pool_strings", [])
        if bool(ints) == bool(strings):
            raise _refuse(node, opset, "expected exactly one of pool_int64s and "
                          "pool_strings")  # fmt: skip
        indexes = _attr(node, "ngram_indexes", [])
        weights = _attr(node, "weights", [])
        if weights and len(weights) != len(indexes):
            raise _refuse(node, opset, f"weights has {len(weights)} values, expected one "
                          f"per n-gram of ngram_indexes ({len(indexes)})")  # fmt: skip
