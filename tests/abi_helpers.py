"""ABI test helpers: a module driven through bare wasmtime calls, as any WASI host would."""

from __future__ import annotations

import hashlib
import json

import wasmtime

_ENGINE = wasmtime.Engine()
_MODULES: dict[str, wasmtime.Module] = {}  # compiled modules by sha256 of their bytes


def reject_constant(name: str):
    """json.loads hook: NaN / Infinity literals are not JSON (RFC 8259)."""
    raise ValueError(f"non-JSON literal {name} in a response")


def strict_json(data: bytes):
    """Parse a response strictly: UTF-8, RFC 8259 JSON, no NaN / Infinity literals."""
    return json.loads(data.decode("utf-8"), parse_constant=reject_constant)


class Raw:
    """One instance of a module, spoken to through the seven ABI exports only."""

    def __init__(
        self, wasm: bytes, call_start: bool = True, engine: wasmtime.Engine | None = None
    ):
        if engine is None:  # compile each module once per test session
            engine = _ENGINE
            key = hashlib.sha256(wasm).hexdigest()
            if key not in _MODULES:
                _MODULES[key] = wasmtime.Module(engine, wasm)
            self.module = _MODULES[key]
        else:
            self.module = wasmtime.Module(engine, wasm)
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        self.exports = linker.instantiate(self.store, self.module).exports(self.store)
        self.memory = self.exports["memory"]
        if call_start:
            self.call("_start")

    def call(self, name, *args):
        return self.exports[name](self.store, *args)

    def write(self, data: bytes) -> int:
        """malloc_buffer(len + 1) and the bytes with a NUL; returns the pointer."""
        ptr = self.call("malloc_buffer", len(data) + 1)
        assert ptr != 0, f"malloc_buffer({len(data) + 1}) failed"
        self.memory.write(self.store, data + b"\0", ptr)
        return ptr

    def output(self) -> bytes:
        loc, n = self.call("get_out_loc"), self.call("get_out_len")
        return self.memory.read(self.store, loc, loc + n)

    def output_to_nul(self) -> bytes:
        """The response read as a C string, the way hosts without get_out_len do."""
        loc = self.call("get_out_loc")
        out = bytearray()
        while True:
            chunk = self.memory.read(self.store, loc + len(out), loc + len(out) + 256)
            if b"\0" in chunk:
                return bytes(out + chunk[: chunk.index(b"\0")])
            out += chunk

    def ask(self, text: str | bytes, free: bool = True) -> tuple[int, dict]:
        """One request; the response parsed strictly (this raises on invalid JSON)."""
        data = text.encode() if isinstance(text, str) else text
        ptr = self.write(data)
        rc = self.call("pred")
        response = strict_json(self.output())
        if free:
            self.call("free_buffer", ptr)
        return rc, response

    def pages(self) -> int:
        return self.memory.size(self.store)
