// A minimal WASI preview1 layer for running wasmexport modules in a browser.
//
// The runtime needs no files, clock or arguments; what a module imports from
// `wasi_snapshot_preview1` (or the older `wasi_unstable`, which modules of the older ABI use)
// is answered here: stdout/stderr go to callbacks, random_get uses crypto, clocks use
// performance/Date, and every other WASI function returns ENOSYS. proc_exit throws WasiExit.
//
//   const wasi = new Wasi({ stdout: console.log });
//   const instance = await WebAssembly.instantiate(module, wasi.imports(module));
//   wasi.bind(instance.exports.memory);

const ESUCCESS = 0;
const EBADF = 8;
const ENOSYS = 52;
const NAMESPACES = ["wasi_snapshot_preview1", "wasi_unstable"];

/** Thrown by proc_exit; `.code` is the exit code. */
export class WasiExit extends Error {
  constructor(code) {
    super(`the module exited with code ${code}`);
    this.name = "WasiExit";
    this.code = code;
  }
}

export class Wasi {
  #memory = null;
  #decoders = new Map();

  /** options.stdout / options.stderr: called with each line of text the module writes. */
  constructor({ stdout = (line) => console.log(line), stderr = (line) => console.warn(line) } = {}) {
    this.sinks = { 1: stdout, 2: stderr };
    this.pending = { 1: "", 2: "" };
  }

  /** Give the layer the instance's memory (after instantiation, before any call). */
  bind(memory) {
    this.#memory = memory;
  }

  // views are made per call: memory.grow detaches the old buffer
  #view() {
    return new DataView(this.#memory.buffer);
  }

  #bytes(ptr, len) {
    return new Uint8Array(this.#memory.buffer, ptr, len);
  }

  /** The functions this layer implements, by WASI name. */
  #functions() {
    return {
      args_sizes_get: (argc, bufSize) => this.#zeroes(argc, bufSize),
      environ_sizes_get: (count, bufSize) => this.#zeroes(count, bufSize),
      args_get: () => ESUCCESS,
      environ_get: () => ESUCCESS,
      fd_write: (fd, iovs, iovsLen, written) => this.#write(fd, iovs, iovsLen, written),
      fd_close: () => EBADF,
      fd_seek: () => EBADF,
      fd_read: () => EBADF,
      fd_fdstat_get: (fd) => (fd <= 2 ? ENOSYS : EBADF),
      fd_prestat_get: () => EBADF, // no preopened directories
      fd_prestat_dir_name: () => EBADF,
      random_get: (ptr, len) => {
        // getRandomValues fills at most 65536 bytes per call
        for (let i = 0; i < len; i += 65536) {
          crypto.getRandomValues(this.#bytes(ptr + i, Math.min(65536, len - i)));
        }
        return ESUCCESS;
      },
      clock_time_get: (id, _precision, out) => {
        const ns = id === 0 ? BigInt(Date.now()) * 1000000n
          : BigInt(Math.round(performance.now() * 1e6));
        this.#view().setBigUint64(out, ns, true);
        return ESUCCESS;
      },
      clock_res_get: (_id, out) => {
        this.#view().setBigUint64(out, 1000n, true);
        return ESUCCESS;
      },
      sched_yield: () => ESUCCESS,
      proc_exit: (code) => {
        this.flush();
        throw new WasiExit(code);
      },
    };
  }

  #zeroes(a, b) {
    const v = this.#view();
    v.setUint32(a, 0, true);
    v.setUint32(b, 0, true);
    return ESUCCESS;
  }

  #write(fd, iovs, iovsLen, written) {
    if (fd !== 1 && fd !== 2) return EBADF;
    const v = this.#view();
    let total = 0;
    let decoder = this.#decoders.get(fd);
    if (!decoder) this.#decoders.set(fd, (decoder = new TextDecoder()));
    for (let i = 0; i < iovsLen; i++) {
      const ptr = v.getUint32(iovs + 8 * i, true);
      const len = v.getUint32(iovs + 8 * i + 4, true);
      this.pending[fd] += decoder.decode(this.#bytes(ptr, len), { stream: true });
      total += len;
    }
    const lines = this.pending[fd].split("\n");
    this.pending[fd] = lines.pop();
    for (const line of lines) this.sinks[fd](line);
    v.setUint32(written, total, true);
    return ESUCCESS;
  }

  /** Pass on text written without a final newline. */
  flush() {
    for (const fd of [1, 2]) {
      if (this.pending[fd]) this.sinks[fd](this.pending[fd]);
      this.pending[fd] = "";
    }
  }

  /**
   * The import object for a compiled module: every function it imports from a WASI namespace
   * gets an implementation or an ENOSYS stub; other imports are left to the caller.
   */
  imports(module) {
    const known = this.#functions();
    const out = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      if (!NAMESPACES.includes(imp.module) || imp.kind !== "function") continue;
      out[imp.module] ??= {};
      out[imp.module][imp.name] = known[imp.name] ?? (() => ENOSYS);
    }
    return out;
  }
}
