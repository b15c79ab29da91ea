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
// The ABI calls live in ../browser/abi_model.mjs, shared with the browser host.

import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";

import { WasmExportError, WasmModel, checkExports, readMetadata } from "../browser/abi_model.mjs";

export { WasmExportError, WasmModel };

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
  const metadata = readMetadata(module);
  const wasi = new WASI({ version: "preview1", args: [], env: {}, returnOnExit: true });
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  checkExports(instance);
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
  return new WasmModel(instance.exports, metadata);
}
