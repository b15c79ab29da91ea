#!/usr/bin/env node
// Run one request through a wasmexport module on Node's WASI.
// Exit codes: 0 ok, 1 error response (printed), 2 usage or load error, 3 the module trapped.

import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const USAGE = `usage: node run.mjs model.wasm [request.json | -]
       node run.mjs model.wasm --raw-in data.bin [--shape 1,1,224,224] [--raw-out out.bin]
  request.json | -     the JSON request (a file, or - / nothing for stdin)
  --raw-in FILE        send FILE's bytes as the input (little-endian, in the input's dtype)
  --shape D0,D1,..     the raw input's shape (may be left out when it is static)
  --raw-out FILE       ask for raw output and write its bytes to FILE (FILE.<i> for several
                       outputs); stdout then shows the response with file names for the data
`;

async function main() {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      allowPositionals: true,
      options: {
        "raw-in": { type: "string" }, shape: { type: "string" },
        "raw-out": { type: "string" }, help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    return usage(e.message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [modelPath, source] = positionals;
  const rawIn = values["raw-in"], rawOut = values["raw-out"];
  if (!modelPath || positionals.length > 2) return usage("expected a model and at most one request");
  if (rawIn && source) return usage("give a request or --raw-in, not both");
  if (values.shape !== undefined && !rawIn) return usage("--shape goes with --raw-in");

  let request;
  try {
    if (rawIn) {
      const req = { input: readFileSync(rawIn).toString("base64"), type: "raw" };
      if (values.shape !== undefined) {
        req.shape = values.shape.split(",").map(Number);
        if (!req.shape.every((d) => Number.isInteger(d) && d >= 0)) {
          return usage(`bad --shape ${values.shape}`);
        }
      }
      if (rawOut) req.output_type = "raw";
      request = JSON.stringify(req);
    } else {
      if ((source ?? "-") === "-" && process.stdin.isTTY) return usage("no request given");
      request = readFileSync(!source || source === "-" ? 0 : source);
      if (rawOut) request = withRawOutput(request);
    }
  } catch (e) {
    process.stderr.write(`run.mjs: ${e.message}\n`);
    return 2;
  }

  let model;
  try {
    const { load } = await importQuietly("./wasmexport.mjs");
    model = await load(modelPath);
  } catch (e) {
    process.stderr.write(`run.mjs: cannot load ${modelPath}: ${e.message}\n`);
    return 2;
  }
  let rc, text;
  try {
    ({ rc, text } = model.request(request));
  } catch (e) {
    process.stderr.write(`run.mjs: the module failed: ${e.message}\n`);
    return 3;
  } finally {
    model.close();
  }
  if (rc === 0 && rawOut) text = writeRawOutputs(JSON.parse(text), rawOut);
  process.stdout.write(text + "\n");
  return rc === 0 ? 0 : 1;
}

function usage(message) {
  process.stderr.write(`run.mjs: ${message}\n${USAGE}`);
  return 2;
}

// Add "output_type": "raw" to a JSON request; a request that does not parse goes unchanged,
// so that the module reports what is wrong with it.
function withRawOutput(bytes) {
  let req;
  try {
    req = JSON.parse(bytes.toString("utf8"));
  } catch {
    return bytes;
  }
  if (req === null || typeof req !== "object" || Array.isArray(req)) return bytes;
  return JSON.stringify({ ...req, output_type: "raw" });
}

function writeRawOutputs(response, path) {
  const several = Array.isArray(response.output);
  const outs = several ? response.output : [response.output];
  const names = outs.map((_, i) => (several ? `${path}.${i}` : path));
  outs.forEach((b64, i) => writeFileSync(names[i], Buffer.from(b64, "base64")));
  return JSON.stringify({ ...response, output: several ? names : names[0] });
}

// Node 20 warns once that WASI is experimental when node:wasi is first imported; drop
// exactly that warning (and nothing else) so the CLI's stderr stays clean.
async function importQuietly(specifier) {
  const emit = process.emitWarning;
  process.emitWarning = function (warning, ...rest) {
    const type = typeof rest[0] === "string" ? rest[0] : rest[0]?.type ?? warning?.name;
    const message = typeof warning === "string" ? warning : warning?.message;
    if (type === "ExperimentalWarning" && /^WASI\b/.test(message ?? "")) return;
    return emit.call(process, warning, ...rest);
  };
  try {
    return await import(specifier);
  } finally {
    process.emitWarning = emit;
  }
}

process.exitCode = await main();
