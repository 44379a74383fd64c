// Builds the viewer into static assets for internal/viewer to embed:
// app.js (the app), decodeImageFrameWorker.js (the DICOM image loader's
// decoding worker, which the loader finds next to app.js), index.html,
// viewer.css and LICENSES.txt (the licence of every bundled package),
// each with a gzipped copy.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const here = path.dirname(new URL(import.meta.url).pathname);
const out = path.resolve(here, process.argv[2] || '../../internal/viewer/assets/dist');

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

// The Emscripten codecs reach for Node's modules only when run by Node,
// and an XML writer deep in the tools' dependencies (never called by the
// viewer) subclasses Node's EventEmitter: in the browser they get an
// empty module, and a do-nothing EventEmitter.
const nodeBuiltins = {
  name: 'node-builtins',
  setup(build) {
    build.onResolve({ filter: /^(node:)?(fs|path|crypto|module|url|worker_threads|os|util|events)$/ }, (args) => ({ path: args.path, namespace: 'empty' }));
    build.onLoad({ filter: /.*/, namespace: 'empty' }, (args) => ({
      contents: /events$/.test(args.path)
        ? 'export class EventEmitter { on() { return this; } once() { return this; } off() { return this; } emit() { return false; } }\nexport default EventEmitter;'
        : 'export default {};',
      loader: 'js',
    }));
  },
};

const common = {
  platform: 'browser',
  plugins: [nodeBuiltins],
  bundle: true,
  format: 'esm',
  minify: true,
  target: ['chrome110', 'firefox115', 'safari16'],
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  loader: { '.wasm': 'file' },
  define: { 'process.env.NODE_ENV': '"production"' },
};

const app = await esbuild.build({
  ...common,
  entryPoints: { app: path.join(here, 'src/main.js') },
  outdir: out,
});
const worker = await esbuild.build({
  ...common,
  entryPoints: {
    decodeImageFrameWorker: path.join(here, 'node_modules/@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js'),
  },
  outdir: out,
});

for (const f of ['index.html', 'viewer.css']) {
  fs.copyFileSync(path.join(here, 'src', f), path.join(out, f));
}

// The licence of every package that reached the bundles, read from the
// package itself (its LICENSE file when it ships one, else the licence
// named in its package.json).
const pkgs = new Map();
for (const meta of [app.metafile, worker.metafile]) {
  for (const input of Object.keys(meta.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) pkgs.set(m[1], path.join(here, 'node_modules', m[1]));
  }
}
let text = 'Mosaic viewer: third-party software bundled in these assets\n\n';
for (const name of [...pkgs.keys()].sort()) {
  const dir = pkgs.get(name);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  text += '='.repeat(72) + '\n' + `${name} ${pj.version}, licence: ${pj.license || 'see below'}\n`;
  const repo = typeof pj.repository === 'string' ? pj.repository : pj.repository?.url;
  for (const u of new Set([pj.homepage, repo].filter(Boolean))) text += `${u}\n`;
  const lic = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
  text += '\n' + (lic ? fs.readFileSync(path.join(dir, lic), 'utf8').trim() : `(the package ships no licence file; its package.json names the ${pj.license} licence, whose text is in the repository above)`) + '\n\n';
}
fs.writeFileSync(path.join(out, 'LICENSES.txt'), text);

// Gzipped copies, which internal/viewer serves to browsers that accept
// them (the app is about 4.5 MB, 1.3 MB gzipped).
for (const f of fs.readdirSync(out)) {
  if (/\.(js|css|html|txt)$/.test(f)) {
    fs.writeFileSync(path.join(out, f + '.gz'), zlib.gzipSync(fs.readFileSync(path.join(out, f)), { level: 9 }));
  }
}

let total = 0;
for (const f of fs.readdirSync(out)) total += fs.statSync(path.join(out, f)).size;
console.log(`viewer: ${fs.readdirSync(out).length} files, ${(total / 1e6).toFixed(1)} MB in ${path.relative(process.cwd(), out)}; ${pkgs.size} packages in LICENSES.txt`);
