// Builds one JavaScript policy into a component with the pinned
// componentize-qjs (package.json / package-lock.json beside this file).
// Called by `cargo xtask build-policies` (xtask/src/lang/js.rs), which runs it
// with NODE_PATH pointing at the `npm ci` install in the cache dir.
//
//   node build.mjs WIT_DIR WORLD SOURCE.js OUT.wasm
//
// `sync: true`: the host leaves wasmtime's component-model-async off.
// `stubWasi: true`: every WASI import becomes a trapping stub, so the
// component imports nothing (the host refuses any import).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";

const [witPath, world, source, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node build.mjs WIT_DIR WORLD SOURCE.js OUT.wasm");
  process.exit(2);
}
const require = createRequire(resolve(process.env.STATUS_ROUTER_QJS_MODULES, "x.js"));
const { componentize } = require("componentize-qjs");
const jsPath = resolve(source);
const { component } = await componentize({
  witPath: resolve(witPath),
  world,
  jsSource: readFileSync(jsPath, "utf8"),
  jsPath,
  moduleRoot: dirname(jsPath),
  sync: true,
  stubWasi: true,
});
writeFileSync(out, component);
