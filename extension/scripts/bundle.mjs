#!/usr/bin/env node
// Bundles the extension for the editor: the extension host entry (CommonJS, `vscode` left to the host) and the
// webview script (a browser IIFE), and puts the JSON Schemas of @skein/proto beside the bundle, where the schema
// loader resolves them. The schemas are the proto package's files, copied at build time, never edited here.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

await build({
  entryPoints: [join(root, 'dist', 'src', 'extension.js')],
  outfile: join(root, 'dist', 'bundle', 'extension.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode'],
  // ESM code that finds its files through import.meta.url keeps working in the CommonJS bundle.
  define: { 'import.meta.url': '__skeinImportMetaUrl' },
  banner: { js: 'const __skeinImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  sourcemap: true,
  logLevel: 'warning',
});
await build({
  entryPoints: [join(root, 'dist', 'src', 'webview', 'page.js')],
  outfile: join(root, 'dist', 'bundle', 'webview.js'),
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  logLevel: 'warning',
});

// The bundle lives in dist/bundle/, so the proto loader's `../schemas/` is dist/schemas/.
const schemas = join(dirname(require.resolve('@skein/proto')), '..', 'schemas');
rmSync(join(root, 'dist', 'schemas'), { recursive: true, force: true });
mkdirSync(join(root, 'dist', 'schemas'), { recursive: true });
cpSync(schemas, join(root, 'dist', 'schemas'), { recursive: true });
