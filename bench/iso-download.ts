// How fast boxsmith brings an ISO into its cache (download through got, hashing while it writes,
// fsync, rename) against the plain peer doing the same work: `curl -o` then `sha256sum`, from the
// same local server in the same run. Prints the ratio; below 1 means boxsmith is faster.
//
//   node --import tsx bench/iso-download.ts [size-MiB] [rounds]
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { ensureIso } from '../src/inputs/iso.ts';

// The peer's commands through zx, asynchronously: the server lives in this process and must go on serving.
const sizeMiB = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 3);
const work = mkdtempSync(path.join(tmpdir(), 'boxsmith-bench-'));

try {
  const source = path.join(work, 'bench.iso');
  const chunk = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  const buffers: Buffer[] = [];
  for (let i = 0; i < sizeMiB; i++) {
    // Vary each MiB so nothing along the way can compress or deduplicate it.
    const block = Buffer.from(chunk);
    block.writeUInt32LE(i, 0);
    buffers.push(block);
    hash.update(block);
  }
  writeFileSync(source, Buffer.concat(buffers));
  const sha256 = hash.digest('hex');
  const server = createServer((_request, response) => {
    response.setHeader('Content-Length', statSync(source).size);
    createReadStream(source).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/bench.iso`;

  const timings = { boxsmith: [] as number[], peer: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const cacheDir = path.join(work, `cache-${round}`);
    let started = performance.now();
    const result = await ensureIso({ file: 'bench.iso', urls: [url], checksum: `sha256:${sha256}` }, { cacheDir });
    timings.boxsmith.push(performance.now() - started);
    if (result.source !== 'download') throw new Error('expected a download');

    const target = path.join(work, `peer-${round}.iso`);
    started = performance.now();
    await $`curl -sSf -o ${target} ${url}`;
    const sum = (await $`sha256sum ${target}`).stdout.split(' ')[0];
    timings.peer.push(performance.now() - started);
    if (sum !== sha256) throw new Error('the peer downloaded something else');
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(target, { force: true });
  }
  server.close();

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const ours = median(timings.boxsmith);
  const peer = median(timings.peer);
  console.log(`ISO into the cache, ${sizeMiB} MiB from 127.0.0.1, median of ${rounds}:`);
  console.log(`  boxsmith (got, hash while writing, fsync, rename): ${(ours / 1000).toFixed(2)} s (${(sizeMiB / (ours / 1000)).toFixed(0)} MiB/s)`);
  console.log(`  peer (curl -o, then sha256sum):                     ${(peer / 1000).toFixed(2)} s (${(sizeMiB / (peer / 1000)).toFixed(0)} MiB/s)`);
  console.log(`  ratio boxsmith/peer: ${(ours / peer).toFixed(2)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
