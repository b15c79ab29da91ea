// The wasmexport ABI seen from JavaScript, shared by the browser host (wasmexport.js) and the
// Node host (../node/wasmexport.mjs). No dependencies and no platform APIs beyond
// WebAssembly, TextEncoder/TextDecoder and atob/btoa, so both hosts import it unchanged; each
// host only instantiates the module with its own WASI and hands the exports to WasmModel.

export const SECTION = "wasmexport";
const ABI_EXPORTS = ["memory", "malloc_buffer", "free_buffer", "pred", "get_out_loc",
  "get_out_len"];

// dtype names of the metadata and of raw responses -> typed arrays (float16 and bfloat16
// as their bits)
export const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, bfloat16: Uint16Array,
  int8: Int8Array, int16: Int16Array, int32: Int32Array, int64: BigInt64Array,
  uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  bool: Uint8Array,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** An error response: pred() returned non-zero. `.rc` and `.response` (the text). */
export class WasmExportError extends Error {
  constructor(message, rc, response) {
    super(message);
    this.name = "WasmExportError";
    this.rc = rc;
    this.response = response;
  }
}

/** The parsed "wasmexport" custom section of a compiled module; throws if it has none. */
export function readMetadata(module) {
  const sections = WebAssembly.Module.customSections(module, SECTION);
  if (sections.length === 0) {
    throw new Error("the module has no 'wasmexport' metadata section: it was not packaged " +
      "by wasmexport (or the section was stripped)");
  }
  return JSON.parse(decoder.decode(sections[0]));
}

/** Throws unless the instance exports every function and the memory of the ABI. */
export function checkExports(instance) {
  const missing = ABI_EXPORTS.filter((name) => !(name in instance.exports));
  if (missing.length) throw new Error(`the module lacks the ABI exports ${missing.join(", ")}`);
}

export class WasmModel {
  #ex;
  #afterCall;

  /**
   * exports: the instance's exports; metadata: readMetadata(module); afterCall: called after
   * every request, e.g. to flush the output the module wrote to stdout/stderr.
   */
  constructor(exports, metadata, afterCall = () => {}) {
    this.#ex = exports;
    this.#afterCall = afterCall;
    this.metadata = metadata;
  }

  get inputs() { return this.metadata.inputs; }
  get outputs() { return this.metadata.outputs; }

  /** Send one request (a string or UTF-8 bytes); returns {rc, text}: rc 0 ok, 1 error. */
  request(text) {
    const ex = this.#ex;
    if (!ex) throw new Error("the module is closed");
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    const ptr = ex.malloc_buffer(bytes.length + 1) >>> 0;
    if (ptr === 0) throw new Error(`malloc_buffer(${bytes.length + 1}) failed: out of memory`);
    try {
      // a view made after each call: memory may have grown and detached the old buffer
      let mem = new Uint8Array(ex.memory.buffer);
      mem.set(bytes, ptr);
      mem[ptr + bytes.length] = 0;
      const rc = ex.pred();
      const loc = ex.get_out_loc() >>> 0;
      const len = ex.get_out_len() >>> 0;
      mem = new Uint8Array(ex.memory.buffer);
      if (loc + len > mem.length) {
        throw new Error(`the response [${loc}, +${len}) lies outside memory (${mem.length} bytes)`);
      }
      // slice: the text must not alias memory that the next call may reuse
      return { rc, text: decoder.decode(mem.slice(loc, loc + len)) };
    } finally {
      ex.free_buffer(ptr);
      this.#afterCall();
    }
  }

  /**
   * Run the model with the raw form. inputs: a tensor, a list in graph-input order, or an
   * object by input name; a tensor is {data: TypedArray | Array, shape} (or a bare typed array
   * when the input's shape is static). Returns {data, shape, dtype}, or a list of them, one
   * per output: see decodeOutput for string, map and sequence outputs. Throws
   * WasmExportError on an error response.
   */
  run(inputs) {
    const specs = this.inputs;
    let list;
    if (isTensor(inputs)) list = [inputs];
    else if (Array.isArray(inputs)) list = inputs;
    else if (inputs && typeof inputs === "object") {
      const names = specs.map((s) => s.name);
      const unknown = Object.keys(inputs).filter((k) => !names.includes(k));
      if (unknown.length) throw new Error(`unknown inputs ${unknown}; the model takes ${names}`);
      list = specs.map((s) => {
        if (!(s.name in inputs)) throw new Error(`missing input ${s.name}`);
        return inputs[s.name];
      });
    } else throw new TypeError("inputs: a tensor {data, shape}, a list, or an object by name");
    if (list.length !== specs.length) {
      throw new Error(`the model takes ${specs.length} inputs, got ${list.length}`);
    }
    const raw = list.map((t, i) => encodeTensor(t, specs[i]));
    const request = { type: "raw", output_type: "raw" };
    if (raw.length === 1) Object.assign(request, { input: raw[0].b64, shape: raw[0].shape });
    else Object.assign(request, { input: raw.map((r) => r.b64), shapes: raw.map((r) => r.shape) });
    const { rc, text } = this.request(JSON.stringify(request));
    const response = JSON.parse(text);
    if (rc !== 0) throw new WasmExportError(response.error ?? text, rc, text);
    const one = "shape" in response;
    const outs = one ? [response.output] : response.output;
    const shapes = one ? [response.shape] : response.shapes;
    const dtypes = one ? [response.dtype] : response.dtypes;
    const result = outs.map((value, i) => decodeOutput(value, shapes[i], dtypes[i]));
    return one ? result[0] : result;
  }

  /** Drop the instance; safe to call twice. */
  close() {
    this.#ex = null;
  }
}

function isTensor(t) {
  return ArrayBuffer.isView(t) ||
    (t !== null && typeof t === "object" && (ArrayBuffer.isView(t.data) || Array.isArray(t.data)));
}

/** base64 of bytes, in chunks (String.fromCharCode takes a bounded argument list). */
export function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** The bytes of base64 text, in a fresh (hence aligned) buffer. */
export function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function encodeTensor(tensor, spec) {
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
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { b64: toBase64(bytes), shape: [...shape] };
}

/**
 * One output of a raw response: a numeric tensor {data, shape, dtype} from its base64;
 * strings and maps (ZipMap's seq(map(...))) {data, shape, dtype} with data the JSON value
 * the response carries; a sequence of tensors (dtype "seq(T)") a list of such tensors; an
 * empty optional (dtype null) null.
 */
function decodeOutput(value, shape, dtype) {
  if (dtype === null || dtype === undefined) return null;
  if (dtype === "string" || dtype.startsWith("map(") || dtype.startsWith("seq(map(")) {
    return { data: value, shape, dtype };
  }
  if (dtype.startsWith("seq(")) {
    const item = dtype.slice(4, -1);
    return value.map((v, i) => decodeOutput(v, shape[i], item));
  }
  return decodeTensor(value, shape, dtype);
}

function decodeTensor(b64, shape, dtype) {
  const Ctor = ARRAYS[dtype];
  if (!Ctor) throw new Error(`unexpected output dtype ${dtype}`);
  const bytes = fromBase64(b64);
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== count * Ctor.BYTES_PER_ELEMENT) {
    throw new Error(`output of shape [${shape}] ${dtype}: got ${bytes.length} bytes`);
  }
  return { data: new Ctor(bytes.buffer), shape, dtype };
}
