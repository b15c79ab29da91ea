// The browser host for wasmexport modules: an ES module with no dependencies.
//
//   import { load } from "./wasmexport.js";
//   const m = await load("model.wasm");                    // a URL, bytes, or a WebAssembly.Module
//   const { rc, text } = m.request('{"input": [[1, 2, 3, 4]]}');   // the ABI itself
//   const y = m.run({ data: new Float32Array([1, 2, 3, 4]), shape: [1, 4] });  // {data, shape, dtype}
//   m.close();
//
// The ABI calls live in abi_model.mjs (shared with the Node host); this file brings the module
// up in a page with its own WASI shim (wasi.js).

import { WasmExportError, WasmModel, checkExports, fromBase64, readMetadata, toBase64 }
  from "./abi_model.mjs";
import { Wasi, WasiExit } from "./wasi.js";

export { WasiExit, WasmExportError, WasmModel, fromBase64, toBase64 };

async function compile(source) {
  if (source instanceof WebAssembly.Module) return source;
  if (typeof source === "string" || source instanceof URL) source = await fetch(source);
  if (source instanceof Response) {
    if (!source.ok) throw new Error(`fetching ${source.url} failed: HTTP ${source.status}`);
    // compileStreaming needs the application/wasm MIME type; bytes work with any server
    return WebAssembly.compile(await source.arrayBuffer());
  }
  return WebAssembly.compile(source);
}

/**
 * Load a packaged module. options.start (default true) calls `_start` once as the ABI asks;
 * false acts as a host that never calls it (the runtime initialises lazily). options.stdout /
 * options.stderr receive lines the module writes (console by default).
 */
export async function load(source, { start = true, stdout, stderr } = {}) {
  const module = await compile(source);
  const metadata = readMetadata(module);
  const wasi = new Wasi({ stdout, stderr });
  const instance = await WebAssembly.instantiate(module, wasi.imports(module));
  checkExports(instance);
  wasi.bind(instance.exports.memory);
  if (start && typeof instance.exports._start === "function") {
    try {
      instance.exports._start();
    } catch (e) {
      if (!(e instanceof WasiExit) || e.code !== 0) throw e;
    }
  }
  return new WasmModel(instance.exports, metadata, () => wasi.flush());
}
