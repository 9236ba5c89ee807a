// Builds assets/graphiql.js and assets/graphiql.css (production builds, minified) from
// the pinned packages in package-lock.json, and assets/THIRD_PARTY_LICENSES.txt with the
// licence of every package in the bundle. Run with `./build.sh` after changing a version;
// the outputs are committed, so building the platform never needs Node.js.
import { build } from 'esbuild';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const result = await build({
  entryPoints: { graphiql: 'src/main.jsx' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: 'assets',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.js': 'jsx' },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

// Every package whose code is in the bundle, with its licence text.
const packages = new Map();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (match) packages.set(match[1], join('node_modules', match[1]));
}
let notices = 'Third-party software in graphiql.js and graphiql.css, with its licence.\n';
for (const [name, dir] of [...packages].sort()) {
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licenceFile = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  const text = licenceFile ? readFileSync(join(dir, licenceFile), 'utf8').trim() : '(no licence file; see the package)';
  notices += `\n${'='.repeat(78)}\n${name}@${meta.version} (${meta.license ?? 'see below'})\n${'='.repeat(78)}\n${text}\n`;
}
writeFileSync('assets/THIRD_PARTY_LICENSES.txt', notices);
console.log(`bundled ${packages.size} packages`);
