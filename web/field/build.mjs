// Builds the field app into server/assets/field/, which is committed so that `cargo build` needs no Node.js.
//   node build.mjs          build, and print each file's size raw and gzipped
//   node build.mjs --check  build into a scratch folder and fail if the committed files differ from it
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const committed = join(here, "../../server/assets/field");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "doorstep-field-")) : committed;
mkdirSync(out, { recursive: true });

// The app reports the Doorstep version it was built with (root Cargo.toml), shown on the office's devices page.
const version = readFileSync(join(here, "../../Cargo.toml"), "utf8").match(/^version = "([^"]+)"/m)[1];

await esbuild.build({
  define: { APP_VERSION: JSON.stringify(version) },
  entryPoints: [join(here, "src/main.js")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020", "chrome90", "safari15"],
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
});
for (const f of ["index.html", "app.css", "manifest.webmanifest", "icon.svg", "sw.js"]) {
  copyFileSync(join(here, "static", f), join(out, f));
}
// The automerge core, compiled to WebAssembly, exactly as npm ships it (the build of the JS glue bundled above).
copyFileSync(join(here, "node_modules/@automerge/automerge/dist/mjs/wasm_bindgen_output/web/automerge_wasm_bg.wasm"), join(out, "automerge.wasm"));

const files = readdirSync(out).sort();
let shell = 0;
for (const f of files) {
  const bytes = readFileSync(join(out, f));
  const gz = gzipSync(bytes, { level: 9 }).length;
  if (f !== "automerge.wasm") shell += gz;
  console.log(`${f.padEnd(22)} ${String(bytes.length).padStart(9)} B   gzip ${String(gz).padStart(8)} B`);
}
console.log(`app shell without the wasm core, gzip: ${shell} B`);

if (check) {
  const stale = files.filter((f) => {
    try {
      return !readFileSync(join(out, f)).equals(readFileSync(join(committed, f)));
    } catch {
      return true;
    }
  });
  const extra = readdirSync(committed).filter((f) => !files.includes(f));
  rmSync(out, { recursive: true, force: true });
  if (stale.length || extra.length) {
    console.error(`server/assets/field does not match web/field (${[...stale, ...extra].join(", ")}): run \`npm run build\` in web/field and commit the result`);
    process.exit(1);
  }
  console.log("server/assets/field matches web/field");
}
