// The Node host for wasmexport modules (Node >= 20, built-in node:wasi).
//
//   import { load } from "./wasmexport.mjs";
//   const m = await load("model.wasm");
//   const { rc, text } = m.request('{"input": [[1, 2, 3, 4]]}');   // the raw ABI
//   const y = m.run({ data: new Float32Array([1, 2, 3, 4]), shape: [1, 4] });  // {data, shape, dtype}
//   m.close();
//
// Importing node:wasi makes Node 20 print an ExperimentalWarning once; this library leaves
// process-wide warning handling to the application (run.mjs filters that one warning).

import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";

const SECTION = "wasmexport";
const ABI_EXPORTS = ["memory", "malloc_buffer", "free_buffer", "pred", "get_out_loc",
  "get_out_len"];

// dtype name (as in the metadata and raw responses) -> typed array; float16 and bfloat16
// travel as bits
const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, bfloat16: Uint16Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  bool: Uint8Array,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** An error response from the module (pred() returned non-zero); `.rc` and `.response`. */
export class WasmExportError extends Error {
  constructor(message, rc, response) {
    super(message);
    this.name = "WasmExportError";
    this.rc = rc;
    this.response = response;
  }
}

/**
 * Load a packaged module: a path (string or URL), its bytes or a WebAssembly.Module.
 * options.start (default true): call `_start` once, as the ABI asks; false acts like a
 * host that never calls it (the runtime initialises lazily).
 */
export async function load(pathOrBytes, { start = true } = {}) {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error("raw tensors are little-endian; this platform is not");
  }
  let module = pathOrBytes;
  if (!(module instanceof WebAssembly.Module)) {
    const bytes = typeof pathOrBytes === "string" || pathOrBytes instanceof URL
      ? await readFile(pathOrBytes) : pathOrBytes;
    module = await WebAssembly.compile(bytes);
  }
  const sections = WebAssembly.Module.customSections(module, SECTION);
  if (sections.length === 0) {
    throw new Error("the module has no 'wasmexport' metadata section: it was not packaged " +
      "by wasmexport (or the section was stripped)");
  }
  const metadata = JSON.parse(decoder.decode(sections[0]));
  const wasi = new WASI({ version: "preview1", args: [], env: {}, returnOnExit: true });
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  const missing = ABI_EXPORTS.filter((name) => !(name in instance.exports));
  if (missing.length) throw new Error(`the module lacks the ABI exports ${missing.join(", ")}`);
  if (start && typeof instance.exports._start === "function") {
    // wasi.start binds the memory for the WASI imports and calls _start once; with
    // returnOnExit a proc_exit inside it comes back as the exit code
    const code = wasi.start(instance);
    if (code) throw new Error(`_start exited with code ${code}`);
  } else {
    // bind the memory only: wasi.initialize refuses an instance exporting _start, so it is
    // given a view holding just the memory (and _initialize, should a build export one)
    const { memory, _initialize } = instance.exports;
    wasi.initialize({ exports: _initialize ? { memory, _initialize } : { memory } });
  }
  return new WasmModel(instance, metadata);
}

export class WasmModel {
  #exports;

  constructor(instance, metadata) {
    this.#exports = instance.exports;
    this.metadata = metadata;
  }

  get inputs() { return this.metadata.inputs; }
  get outputs() { return this.metadata.outputs; }

  /** Send one ABI request (a string or UTF-8 bytes); returns {rc, text}. */
  request(text) {
    const ex = this.#exports;
    if (!ex) throw new Error("the module is closed");
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    const ptr = ex.malloc_buffer(bytes.length + 1) >>> 0;
    if (ptr === 0) throw new Error(`malloc_buffer(${bytes.length + 1}) failed: out of memory`);
    try {
      let mem = new Uint8Array(ex.memory.buffer); // after the call: memory may have grown
      mem.set(bytes, ptr);
      mem[ptr + bytes.length] = 0;
      const rc = ex.pred();
      const loc = ex.get_out_loc() >>> 0;
      const len = ex.get_out_len() >>> 0;
      mem = new Uint8Array(ex.memory.buffer);
      if (loc + len > mem.length) {
        throw new Error(`the response [${loc}, +${len}) lies outside memory (${mem.length} bytes)`);
      }
      return { rc, text: decoder.decode(mem.subarray(loc, loc + len)) };
    } finally {
      ex.free_buffer(ptr);
    }
  }

  /**
   * Run the model through the raw form. inputs: one tensor, a list in graph-input order or
   * an object by input name; a tensor is {data: TypedArray | Array, shape: [..]} (or a bare
   * typed array when the input's shape is static). Returns {data, shape, dtype} for one
   * output, a list of them for several. Throws WasmExportError on an error response.
   */
  run(inputs) {
    const specs = this.inputs;
    let list;
    if (isTensor(inputs)) list = [inputs];
    else if (Array.isArray(inputs)) list = inputs;
    else if (inputs && typeof inputs === "object") {
      const unknown = Object.keys(inputs).filter((k) => !specs.some((s) => s.name === k));
      if (unknown.length) throw new Error(`unknown inputs ${unknown}; the model takes ${specs.map((s) => s.name)}`);
      list = specs.map((s) => {
        if (!(s.name in inputs)) throw new Error(`missing input ${s.name}`);
        return inputs[s.name];
      });
    } else throw new TypeError("inputs: a tensor {data, shape}, a list or an object by name");
    if (list.length !== specs.length) {
      throw new Error(`the model takes ${specs.length} inputs, got ${list.length}`);
    }
    const raw = list.map((t, i) => toRaw(t, specs[i]));
    const request = { type: "raw", output_type: "raw" };
    if (raw.length === 1) {
      request.input = raw[0].b64;
      request.shape = raw[0].shape;
    } else {
      request.input = raw.map((r) => r.b64);
      request.shapes = raw.map((r) => r.shape);
    }
    const { rc, text } = this.request(JSON.stringify(request));
    const response = JSON.parse(text);
    if (rc !== 0) throw new WasmExportError(response.error ?? text, rc, text);
    const several = !("shape" in response);
    const outs = several ? response.output : [response.output];
    const shapes = several ? response.shapes : [response.shape];
    const dtypes = several ? response.dtypes : [response.dtype];
    const result = outs.map((b64, i) => fromRaw(b64, shapes[i], dtypes[i]));
    return several ? result : result[0];
  }

  /** Drop the instance; safe to call twice. */
  close() {
    this.#exports = null;
  }
}

function isTensor(t) {
  return ArrayBuffer.isView(t) ||
    (t !== null && typeof t === "object" && (ArrayBuffer.isView(t.data) || Array.isArray(t.data)));
}

function toRaw(tensor, spec) {
  const Ctor = ARRAYS[spec.dtype];
  if (!Ctor) throw new TypeError(`input ${spec.name}: ${spec.dtype} has no raw form`);
  if (!isTensor(tensor)) throw new TypeError(`input ${spec.name}: expected {data, shape}`);
  let { data, shape } = ArrayBuffer.isView(tensor) ? { data: tensor } : tensor;
  if (shape === undefined) {
    if (!spec.shape || spec.shape.some((d) => typeof d !== "number")) {
      throw new Error(`input ${spec.name}: give a shape (declared ${JSON.stringify(spec.shape)})`);
    }
    shape = spec.shape;
  }
  if (!(data instanceof Ctor)) {
    const big = Ctor === BigInt64Array || Ctor === BigUint64Array;
    data = Ctor.from(data, big ? (x) => BigInt(x) : Number);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new Error(`input ${spec.name}: shape [${shape}] needs ${count} values, got ${data.length}`);
  }
  const b64 = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
  return { b64, shape: [...shape] };
}

function fromRaw(b64, shape, dtype) {
  const Ctor = ARRAYS[dtype];
  if (!Ctor) throw new Error(`unexpected output dtype ${dtype}`);
  const bytes = Buffer.from(b64, "base64");
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new Error(`output of shape [${shape}] ${dtype}: got ${bytes.length} bytes`);
  }
  const copy = new Uint8Array(bytes.length); // an aligned buffer of its own
  copy.set(bytes);
  return { data: new Ctor(copy.buffer), shape, dtype };
}
