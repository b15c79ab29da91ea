"""The Python host: run a packaged module through the ABI on wasmtime.

    with wasmexport.load("model.wasm") as module:
        y = module.run(x)                     # numpy in, numpy out
        rc, text = module.request('{"input": [[1, 2]]}')   # the raw ABI

Values other than numeric tensors follow onnxruntime's Python API:

- string tensors: numpy arrays of str (dtype object or a str dtype) in; numpy arrays of
  dtype object holding str out;
- bfloat16 tensors: numpy arrays of ``ml_dtypes.bfloat16`` in and out (other float arrays
  are rounded to it on the way in);
- a map input (DictVectorizer, CastMap): a dict, e.g. {"a": 1.0} or {3: 0.5};
- a sequence-of-maps output (ZipMap): a list of dicts, one per row, with int keys for
  int64 labels and str keys for string labels; a map output: one dict;
- a sequence of tensors ("seq(float32)"): a list of arrays, in and out;
- an optional ("optional(float32)", "optional(seq(float32))"): None when empty, else the
  array or list it holds.

Inputs that are strings or maps travel as JSON (the raw form carries only numbers); outputs
always come back in the requested form, strings and maps as JSON inside it. In the raw form a
sequence is a list of base64 texts with a list of shapes, and an empty optional is null.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import wasmtime

from ..errors import PackageError, RuntimeABIError
from ..packager.signature import (
    METADATA_SECTION,
    Metadata,
    TensorSpec,
    cast_same_kind,
    is_map_type,
    numpy_dtype,
)
from ..packager.wasm_binary import WasmBinary

__all__ = ["WasmModel", "load", "read_checked_metadata"]

_engine_lock = threading.Lock()
_engine: wasmtime.Engine | None = None


def _shared_engine() -> wasmtime.Engine:
    """One engine per process: engines are thread-safe and costly to create."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = wasmtime.Engine()
        return _engine


class WasmModel:
    """One instance of a packaged module; owns its wasmtime store. Close it when done.

    ``metadata`` is the module's ``wasmexport`` section (a ``Metadata``: inputs, outputs,
    ops, opsets, framework, producer, plan size and sha256, runtime), read and checked
    against the plan when the module loads.
    """

    def __init__(self, wasm: bytes | str | os.PathLike):
        data = Path(wasm).read_bytes() if isinstance(wasm, (str, os.PathLike)) else bytes(wasm)
        self.metadata = read_checked_metadata(data)
        engine = _shared_engine()
        self._store = wasmtime.Store(engine)
        self._store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        try:
            module = wasmtime.Module(engine, data)
            instance = linker.instantiate(self._store, module)
        except wasmtime.WasmtimeError as e:
            raise RuntimeABIError(f"cannot instantiate the module: {e}") from e
        exports = instance.exports(self._store)
        self._memory = exports["memory"]
        self._fn = {
            name: exports[name]
            for name in (
                "_start",
                "malloc_buffer",
                "free_buffer",
                "pred",
                "get_out_loc",
                "get_out_len",
            )  # fmt: skip
        }
        self._fn["_start"](self._store)
        self._closed = False

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.metadata.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.metadata.outputs

    def request(self, text: str | bytes) -> tuple[int, str]:
        """Send one ABI request; return pred()'s code (0 ok, 1 error) and the response."""
        if self._closed:
            raise ValueError("the module is closed")
        data = text.encode() if isinstance(text, str) else bytes(text)
        store, fn = self._store, self._fn
        ptr = fn["malloc_buffer"](store, len(data) + 1)
        if ptr == 0:
            raise RuntimeABIError(f"malloc_buffer({len(data) + 1}) failed: out of memory")
        try:
            self._memory.write(store, data + b"\0", ptr)
            rc = fn["pred"](store)
            loc, length = fn["get_out_loc"](store), fn["get_out_len"](store)
            # memory may have grown during pred: read through a fresh view
            response = self._memory.read(store, loc, loc + length).decode("utf-8")
        finally:
            fn["free_buffer"](store, ptr)
        return rc, response

    def run(self, inputs, *, raw: bool = True):
        """Run the model on numpy inputs; one output -> an array, several -> a list.

        Args:
            inputs: an array (single input), a list in graph-input order, or a dict by name.
                A plain nested list is one input's value when its rank is that input's.
                Arrays are cast to the declared dtype where numpy's same_kind rule allows
                it (float64 -> float32, int32 -> int64, bool or int -> float); a cast to a
                lower kind (float -> int, int -> bool) is a TypeError.
            raw: send and receive base64 raw tensors (fast); False uses nested JSON lists.

        Raises:
            RuntimeABIError: the module answered with an error (its message is kept).
            KeyError: an unknown or missing input name. ValueError: the wrong number of
                inputs. TypeError: an input of a dtype that cannot be cast.
        """
        arrays = self._bind(inputs)
        request: dict[str, object] = {}
        # strings and maps have no raw bytes: such inputs go as JSON, outputs may stay raw
        plain = [
            _element_type(s.dtype) != "string" and not is_map_type(s.dtype)
            for s in self.inputs
        ]
        raw_in = raw and all(plain)
        if raw:
            request["output_type"] = "raw"
        if raw_in:
            request["type"] = "raw"
            request["input"] = [_nest(a, _b64) for a in arrays]
            request["shapes"] = [_nest(a, lambda x: list(x.shape)) for a in arrays]
        else:
            request["input"] = [_nest(a, _json_value) for a in arrays]
        if len(arrays) == 1:
            request["input"] = request["input"][0]
            if raw_in:
                request["shape"] = request.pop("shapes")[0]
        rc, text = self.request(json.dumps(request))
        response = json.loads(text)
        if rc != 0:
            raise RuntimeABIError(response.get("error", text))
        outputs = self._decode(response, raw)
        return outputs[0] if len(outputs) == 1 else outputs

    def _bind(self, inputs) -> list[np.ndarray]:
        """Order inputs by graph input and cast them to the declared dtypes."""
        specs = self.inputs
        # a lone map input given as a dict is the value, not inputs by name; a lone sequence
        # input given as a list is the sequence, unless its one entry is a list or None
        lone_map = len(specs) == 1 and is_map_type(specs[0].dtype)
        lone_seq = (
            len(specs) == 1
            and "seq(" in specs[0].dtype
            and not is_map_type(specs[0].dtype)
            and isinstance(inputs, list)
            and not (len(inputs) == 1 and (inputs[0] is None or isinstance(inputs[0], list)))
        )
        if isinstance(inputs, Mapping) and not (lone_map and set(inputs) != {specs[0].name}):
            unknown = set(inputs) - {s.name for s in specs}
            if unknown:
                raise KeyError(f"unknown inputs {sorted(unknown)}; the model takes "
                               f"{[s.name for s in specs]}")  # fmt: skip
            missing = [s.name for s in specs if s.name not in inputs]
            if missing:
                raise KeyError(f"missing inputs {missing}")
            values = [inputs[s.name] for s in specs]
        elif (
            isinstance(inputs, Sequence)
            and not isinstance(inputs, (str, bytes))
            and not lone_seq
            and not _is_nested_value_of(inputs, specs)
            and (
                len(specs) != 1
                or (inputs and (inputs[0] is None or isinstance(inputs[0], np.ndarray | list)))
            )
        ):
            values = list(inputs)
        else:
            values = [inputs]
        if len(values) != len(specs):
            names = ", ".join(s.name for s in specs)
            raise ValueError(f"the model takes {len(specs)} input{'s' * (len(specs) != 1)} "
                             f"({names}), got {len(values)}")  # fmt: skip
        return [self._bind_one(spec, value) for spec, value in zip(specs, values, strict=True)]

    def _bind_one(self, spec: TensorSpec, value):
        """One input checked and cast to its declared type: an array, a dict (maps), a list
        of arrays (sequences) or None (an empty optional)."""
        if spec.dtype.startswith("optional("):
            if value is None:
                return None
            return self._bind_one(TensorSpec(spec.name, spec.dtype[9:-1], spec.shape), value)
        if spec.dtype.startswith("seq(") and not is_map_type(spec.dtype):
            if isinstance(value, (np.ndarray, str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f"input {spec.name!r}: expected a list of arrays for "
                                f"{spec.dtype}, got {type(value).__name__}")  # fmt: skip
            item = TensorSpec(spec.name, spec.dtype[4:-1], None)
            return [self._bind_one(item, v) for v in value]
        if is_map_type(spec.dtype):
            if not isinstance(value, Mapping):
                raise TypeError(f"input {spec.name!r}: expected a dict for {spec.dtype}, "
                                f"got {type(value).__name__}")  # fmt: skip
            return dict(value)
        if spec.dtype == "string":
            a = np.asarray(value)
            if a.dtype.kind not in "OUS":
                raise TypeError(f"input {spec.name!r}: expected strings, got {a.dtype}")
            return a.astype(object)
        given = np.asarray(value)
        a = cast_same_kind(given, spec.dtype)
        if a is None:
            raise TypeError(f"input {spec.name!r}: expected {spec.dtype}, got {given.dtype}")
        # C order, little-endian (np.ascontiguousarray would turn a scalar into 1-D)
        return np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C")

    def _decode(self, response: dict, raw: bool) -> list:
        out = response["output"]
        if len(self.outputs) == 1:
            out = [out]
        if not raw:
            return [
                _from_json(v, s.dtype, None) for s, v in zip(self.outputs, out, strict=True)
            ]
        shapes = [response["shape"]] if "shape" in response else response["shapes"]
        dtypes = response["dtype"] if "dtype" in response else response["dtypes"]
        dtypes = [dtypes] if isinstance(dtypes, str) or dtypes is None else dtypes
        return [_from_raw(b, d, s) for b, s, d in zip(out, shapes, dtypes, strict=True)]

    def close(self) -> None:
        """Release the instance; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._fn = {}
            self._memory = None
            self._store = None

    def __enter__(self) -> WasmModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}: {s.dtype}{s.shape_str()}" for s in self.inputs)
        outs = ", ".join(f"{s.name}: {s.dtype}{s.shape_str()}" for s in self.outputs)
        return f"<WasmModel ({ins}) -> ({outs})>"


def _is_nested_value_of(inputs, specs: list[TensorSpec]) -> bool:
    """True when a plain nested list is the one tensor input's value, not a list of inputs:
    its rank as an array is the input's declared rank (``[[0.0] * 20]`` for an input of
    shape (batch, 20)), while its first item's is not."""
    if len(specs) != 1 or specs[0].shape is None or not isinstance(inputs, list):
        return False
    if not inputs or not isinstance(inputs[0], list):
        return False
    try:
        as_array = np.asarray(inputs)
    except ValueError:  # ragged: a list of inputs of different shapes
        return False
    return as_array.dtype.kind in "biuf" and as_array.ndim == len(specs[0].shape)


def _element_type(type_name: str) -> str:
    """The tensor type inside sequence and optional types ("optional(seq(float32))" ->
    "float32"); other names as they are."""
    while type_name.startswith(("optional(", "seq(")) and not is_map_type(type_name):
        type_name = type_name[type_name.index("(") + 1 : -1]
    return type_name


def _nest(value, fn):
    """fn applied to an input's arrays, keeping its sequence (list) and None structure."""
    if value is None:
        return None
    if isinstance(value, list):
        return [fn(v) for v in value]
    return fn(value)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode()


def _from_raw(b: object, type_name: str | None, shape) -> object:
    """An output from its raw form: base64 bytes, a list of them for a sequence, None for an
    empty optional (no type), JSON for strings and maps."""
    if type_name is None:
        return None
    if type_name.startswith("seq(") and not is_map_type(type_name):
        item = type_name[4:-1]
        return [_from_raw(x, item, s) for x, s in zip(b, shape, strict=True)]
    if type_name == "string" or is_map_type(type_name):
        return _from_json(b, type_name, shape)
    dtype = numpy_dtype(type_name)
    return np.frombuffer(base64.b64decode(b), dtype=dtype.newbyteorder("<")).reshape(
        shape
    ).astype(dtype)


def _json_value(a) -> object:
    """An input as its JSON request form: nested lists, or an object for a map."""
    if isinstance(a, dict):
        return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in a.items()}
    if a.dtype == object:
        return np.vectorize(_text, otypes=[object])(a).tolist() if a.size else a.tolist()
    if a.dtype == numpy_dtype("bfloat16"):
        a = a.astype(np.float32)  # exact; numpy sees bfloat16 as kind "V", not "f"
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        # strict JSON has no NaN or Infinity: the runtime reads them as strings
        return np.vectorize(_number, otypes=[object])(a.astype(np.float64)).tolist()
    return a.tolist()


def _number(v: float) -> float | str:
    """A float as JSON accepts it; non-finite values by name ("NaN", "-Infinity")."""
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return float(v)


def _text(x: object) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def _map_keys(d: dict, type_name: str) -> dict:
    """A map from its JSON object: int keys for int64 maps, keys in ascending order (as
    onnxruntime's maps iterate: by value for ints, by UTF-8 bytes for strings)."""
    key, value = type_name.split("(")[-1].rstrip(")").split(",")
    if value in ("float32", "float64"):
        # Python floats of the value's precision, as onnxruntime returns them
        d = {k: float(np.dtype(value).type(v)) for k, v in d.items()}
    if key == "int64":
        return dict(sorted((int(k), v) for k, v in d.items()))
    return dict(sorted(d.items(), key=lambda kv: kv[0].encode("utf-8")))


def _from_json(v: object, type_name: str, shape) -> object:
    """An output from its JSON form: arrays, dicts (maps), lists of dicts, lists of arrays
    (sequences) or None (an empty optional)."""
    if type_name.startswith("optional("):
        return None if v is None else _from_json(v, type_name[9:-1], shape)
    if type_name.startswith("seq(") and not type_name.startswith("seq(map("):
        return [_from_json(x, type_name[4:-1], None) for x in v]
    if type_name.startswith("seq(map("):
        return [_map_keys(d, type_name) for d in v]
    if type_name.startswith("map("):
        return _map_keys(v, type_name)
    if type_name == "bfloat16":
        # through float32, which reads "NaN" / "Infinity"; exact for bfloat16 values
        return np.asarray(v, dtype=np.float32).astype(numpy_dtype(type_name))
    a = np.asarray(v, dtype=numpy_dtype(type_name))
    if shape is not None and a.dtype == object:
        # nested lists of strings: keep the exact shape (empty dims included)
        out = np.empty(tuple(shape), dtype=object)
        out.reshape(-1)[:] = a.reshape(-1) if a.size else []
        return out
    return a


def read_checked_metadata(data: bytes) -> Metadata:
    """The metadata of a packaged module, after checking that its plan (weights included)
    is the one the packager wrote: a module damaged in transit or on disk would otherwise
    run and answer wrong numbers.

    Raises:
        RuntimeABIError: not a wasm module, no wasmexport metadata, or a plan whose sha256
            differs from the one the metadata records.
    """
    try:
        binary = WasmBinary.parse(data)
    except PackageError as e:
        raise RuntimeABIError(f"not a readable wasm module: {e}") from e
    section = binary.get_custom_section(METADATA_SECTION)
    if section is None:
        raise RuntimeABIError(
            "the module has no 'wasmexport' metadata section: it was not packaged by "
            "wasmexport (or the section was stripped)"
        )
    try:
        metadata = Metadata.from_bytes(section)
    except (ValueError, KeyError, TypeError) as e:
        raise RuntimeABIError(f"unreadable 'wasmexport' metadata section: {e}") from e
    if metadata.plan_sha256:
        plan = binary.data_section_tail(metadata.plan_bytes)
        digest = hashlib.sha256(plan).hexdigest() if plan is not None else "missing"
        if digest != metadata.plan_sha256:
            raise RuntimeABIError(
                f"the module is damaged: its plan's sha256 is {digest[:16]}..., its "
                f"metadata records {metadata.plan_sha256[:16]}...; export or copy the "
                "module again"
            )
    return metadata


def load(path: str | os.PathLike | bytes) -> WasmModel:
    """Load a packaged .wasm file (or its bytes) into a new instance."""
    return WasmModel(path)
