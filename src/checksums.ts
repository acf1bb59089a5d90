// `boxsmith checksums [box...] [--refresh]`: ISO checksums are pinned in the definitions (Packer
// 1.6.6 fetches a `file:` checksum URL even to validate, so it cannot be the pin). This compares
// each pin with the release's published checksum file and, with --refresh, rewrites the pin in the
// definition file that sets it, keeping the file's comments and layout.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from './atomic-files.ts';
import { displayPath } from './definitions/errors.ts';
import { listBoxes, loadDefinition } from './definitions/load.ts';
import { checkPinnedChecksum } from './inputs/iso.ts';

const CHECKSUM_PATH = ['base', 'iso', 'checksum'];

/** Checks the pins of the boxes (default: every box with an ISO base); the exit code: 0 all match, 1 not. */
export async function checkChecksums(requested: string[], refresh: boolean): Promise<number> {
  const boxes = requested.length ? requested : listBoxes().filter((box) => loadDefinition(box).definition.base.kind === 'iso');
  let allGood = true;
  for (const box of boxes) {
    const loaded = loadDefinition(box);
    const iso = loaded.definition.base.iso;
    if (!iso) {
      console.log(`${box}: no ISO (its base is ${loaded.definition.base.kind})`);
      continue;
    }
    let check;
    try {
      check = await checkPinnedChecksum(iso);
    } catch (error) {
      console.log(`${box}: could not check ${iso.file}: ${(error as Error).message}`);
      allGood = false;
      continue;
    }
    if (check.matches) {
      console.log(`${box}: ${iso.file} ${check.pinned} matches ${iso.checksum_url}`);
      continue;
    }
    const file = loaded.files.find((candidate) => parseDocument(readFileSync(candidate, 'utf8')).hasIn(CHECKSUM_PATH));
    if (!refresh || !file) {
      console.log(`${box}: ${iso.file} is pinned to ${check.pinned}, but ${iso.checksum_url} says ${check.published}${file ? ` (set in ${displayPath(file)}; --refresh rewrites it)` : ''}`);
      allGood = false;
      continue;
    }
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.setIn(CHECKSUM_PATH, check.published);
    await writeFileAtomic(file, doc.toString());
    loadDefinition(box); // the rewritten file must still be a valid definition
    console.log(`${box}: ${displayPath(file)}: ${iso.file} ${check.pinned} -> ${check.published}`);
  }
  return allGood ? 0 : 1;
}
