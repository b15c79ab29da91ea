// Drive the browser host in headless Chromium (playwright-core), for tests and CI.
//
//   node drive.mjs http://127.0.0.1:8000/index.html < job.json > result.json
//
// job: {model: "model.wasm" (relative to the page), start: true, requests: [text, ...],
//       runs: [{b64, shape}, ...] (float32 tensors for m.run), page_request: text | null}
// result: {metadata, requests: [{rc, text}], runs: [{b64, shape, dtype, type} | {error, name,
//          rc}], page: {status, response} | null, console: [errors]}
// Environment: CHROMIUM (default /usr/bin/chromium).

import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

const pageUrl = process.argv[2];
const job = JSON.parse(readFileSync(0, "utf8"));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ARGS,
  headless: true,
});
try {
  const page = await browser.newPage();
  const console_ = [];
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && console_.push(m.text()));
  await page.goto(pageUrl);

  // step 1: the library, called from the page
  const result = await page.evaluate(async (job) => {
    const { load, toBase64, fromBase64 } = await import("./wasmexport.js");
    const m = await load(job.model, { start: job.start });
    const requests = job.requests.map((text) => m.request(text));
    const runs = job.runs.map(({ b64, shape }) => {
      const data = new Float32Array(fromBase64(b64).buffer);
      try {
        const y = m.run({ data, shape });
        const bytes = new Uint8Array(y.data.buffer, y.data.byteOffset, y.data.byteLength);
        return { b64: toBase64(bytes), shape: y.shape, dtype: y.dtype,
          type: y.data.constructor.name };
      } catch (e) {
        return { error: e.message, name: e.name, rc: e.rc };
      }
    });
    const metadata = m.metadata;
    m.close();
    return { metadata, requests, runs };
  }, job);

  // step 2: the page as a person uses it: ?model=..., type a request, press Run
  result.page = null;
  if (job.page_request !== null && job.page_request !== undefined) {
    await page.goto(`${pageUrl}?model=${encodeURIComponent(job.model)}`);
    await page.waitForFunction(() => !document.getElementById("run").disabled, null,
      { timeout: 20000 });
    await page.fill("#request", job.page_request);
    await page.click("#run");
    result.page = {
      status: await page.textContent("#status"),
      response: await page.textContent("#response"),
    };
  }
  result.console = console_;
  process.stdout.write(JSON.stringify(result));
} finally {
  await browser.close();
}
