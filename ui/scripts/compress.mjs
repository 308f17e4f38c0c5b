// Writes a .br and a .gz twin next to every text file of dist/, which the server sends to
// clients that accept them (server/src/http/ui.rs), and prints the sizes of what the first
// screen downloads (index.html + its entry script and CSS, gzip) against the 100 KB budget.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url).pathname;
const text = /\.(html|js|css|svg|json|txt|webmanifest)$/;
const sizes = {};

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (text.test(name)) {
      const data = readFileSync(path);
      const gz = gzipSync(data, { level: 9 });
      const br = brotliCompressSync(data, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
      });
      writeFileSync(path + '.gz', gz);
      writeFileSync(path + '.br', br);
      sizes[relative(dist, path)] = { raw: data.length, gzip: gz.length, br: br.length };
    }
  }
}
walk(dist);

// The first screen: index.html and what it references directly (entry JS and CSS; the
// modulepreloads Vite adds for shared chunks are fetched at once too).
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const refs = [...html.matchAll(/(?:src|href)="\/([^"]+)"/g)].map((m) => m[1]).filter((r) => sizes[r]);
const first = ['index.html', ...refs];
const total = first.reduce((n, f) => n + sizes[f].gzip, 0);
const report = { first_screen: first, first_screen_gzip_bytes: total, files: sizes };
writeFileSync(join(dist, 'sizes.json'), JSON.stringify(report, null, 2));
console.log(`first screen (gzip): ${(total / 1024).toFixed(1)} KB in ${first.join(', ')}`);
if (total > 100 * 1024) {
  console.error('over the 100 KB first-screen budget (issue 24)');
  process.exit(1);
}
