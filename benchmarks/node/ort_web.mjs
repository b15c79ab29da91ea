// Time one .onnx model on onnxruntime-web's WASM backend (1 thread, SIMD).
//
//   node ort_web.mjs model.onnx input.bin shape rounds warmup out.bin
//
// input.bin holds float32 little-endian values of the comma-separated shape;
// the first output is written to out.bin; one JSON line with the per-round
// times in milliseconds goes to stdout: "times" in CPU time of the process
// (user + system), "wall" in wall-clock time.
import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-web";

const [modelPath, inputPath, shapeText, roundsText, warmupText, outPath] =
  process.argv.slice(2);
ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.wasm.proxy = false;

const session = await ort.InferenceSession.create(readFileSync(modelPath), {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
});
const bytes = readFileSync(inputPath);
const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
const shape = shapeText.split(",").map(Number);
const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", data, shape) };

let result;
for (let i = 0; i < Number(warmupText); i++) result = await session.run(feeds);
const times = [], wall = [];
for (let i = 0; i < Number(roundsText); i++) {
  const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
  result = await session.run(feeds);
  wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
  const c = process.cpuUsage(c0);
  times.push((c.user + c.system) / 1e3);
}
const out = result[session.outputNames[0]].data;
writeFileSync(outPath, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
console.log(JSON.stringify({ version: ort.env.versions?.web ?? "", times, wall }));
