// How fast inspectBox checks and hashes a box (one streaming pass, sha256 and the tar's structure
// from the same bytes; the package step's read of Packer's boxes before boxsmith packaged every
// box itself) against what it did before that, the peer measured in the same
// run: `tar -xzOf BOX metadata.json` (the whole box decompressed, Packer writes metadata.json last)
// then `sha256sum` twice. Prints the ratio; below 1 means boxsmith is faster.
//
//   node --import tsx bench/box-read.ts [BOX | image-MiB] [rounds]
// With a number (default 256), a libvirt box is made with an image of that many MiB, half random
// (incompressible) and half zeros, as a disk image is, by tar and gzip -6 as Packer would.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { inspectBox } from '../src/store/box-file.ts';

const argument = process.argv[2] ?? '256';
const rounds = Number(process.argv[3] ?? 3);
const work = mkdtempSync(path.join(tmpdir(), 'boxsmith-bench-'));
$.verbose = false;

try {
  let box = argument;
  if (!existsSync(argument)) {
    const mib = Number(argument);
    const image = path.join(work, 'box.img');
    const random = randomBytes(1024 * 1024);
    const zeros = Buffer.alloc(1024 * 1024);
    const blocks: Buffer[] = [];
    for (let i = 0; i < mib; i++) {
      const block = i % 2 ? zeros : Buffer.from(random);
      if (!(i % 2)) block.writeUInt32LE(i, 0);
      blocks.push(block);
    }
    writeFileSync(image, Buffer.concat(blocks));
    writeFileSync(path.join(work, 'metadata.json'), '{"provider":"libvirt","format":"qcow2","virtual_size":40}\n');
    writeFileSync(path.join(work, 'Vagrantfile'), 'Vagrant.configure("2") do |config| end\n');
    box = path.join(work, 'libvirt.box');
    // metadata.json last, as Packer's post-processor writes it.
    await $`tar -cf - -C ${work} box.img Vagrantfile metadata.json | gzip -6 > ${box}`;
  }
  const timings = { boxsmith: [] as number[], peer: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so the page cache favours neither.
    for (const who of round % 2 ? (['peer', 'boxsmith'] as const) : (['boxsmith', 'peer'] as const)) {
      const started = process.hrtime.bigint();
      if (who === 'boxsmith') await inspectBox(box, 'libvirt');
      else {
        await $`tar -xzOf ${box} metadata.json`;
        await $`sha256sum ${box}`;
        await $`sha256sum ${box}`;
      }
      timings[who].push(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const [ours, peer] = [median(timings.boxsmith), median(timings.peer)];
  console.log(`box ${box}: median of ${rounds} rounds`);
  console.log(`  boxsmith inspectBox (one pass):                ${ours.toFixed(2)} s`);
  console.log(`  peer tar -xzOf metadata.json + 2 x sha256sum:  ${peer.toFixed(2)} s`);
  console.log(`ratio boxsmith/peer: ${(ours / peer).toFixed(2)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
