// `boxsmith checksums [box...] [--refresh]`: the checksums a definition pins for what it downloads,
// checked against where they come from, and with --refresh rewritten in the definition file that
// sets them, keeping the file's comments and layout:
// - the ISO's (Packer 1.6.6 fetches a `file:` checksum URL even to validate, so it cannot be the
//   pin), against the release's signed checksum file;
// - Docker's static .tgz (docker.static.sha256), which Docker publishes no checksum of: against the
//   sha256 of the file downloaded from docker.static.url now.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from './atomic-files.ts';
import { displayPath } from './definitions/errors.ts';
import { dockerStaticFile, listBoxes, loadDefinition, type LoadedDefinition } from './definitions/load.ts';
import { fetchSha256 } from './inputs/docker-static.ts';
import { checkPinnedChecksum } from './inputs/iso.ts';

/** One pinned checksum of a definition and how to find out what it should be. */
interface Pin {
  /** The pinned file, as messages name it. */
  file: string;
  keyPath: string[];
  /** As pinned, `sha256:<hex>`. */
  pinned: string;
  /** Where the published value comes from, as `<source> matches` and `<says> <checksum>` read. */
  source: string;
  says: string;
  /** The checksum as published, `sha256:<hex>`; throws when it cannot be found out. */
  published: () => Promise<string>;
  /** The value written into the definition for a published checksum. */
  written: (published: string) => string;
}

function pinsOf(loaded: LoadedDefinition): Pin[] {
  const { base, docker } = loaded.definition;
  const pins: Pin[] = [];
  const iso = base.iso;
  if (iso) {
    pins.push({
      file: iso.file,
      keyPath: ['base', 'iso', 'checksum'],
      pinned: iso.checksum,
      source: String(iso.checksum_url),
      says: `${iso.checksum_url} says`,
      published: async () => (await checkPinnedChecksum(iso)).published,
      written: (published) => published,
    });
  }
  if (docker.install && docker.source === 'static' && docker.static) {
    const spec = docker.static;
    pins.push({
      file: dockerStaticFile(spec),
      keyPath: ['docker', 'static', 'sha256'],
      pinned: `sha256:${spec.sha256}`,
      source: spec.url,
      says: `the file at ${spec.url} is`,
      published: async () => `sha256:${await fetchSha256(spec.url)}`,
      written: (published) => published.replace(/^sha256:/, ''),
    });
  }
  return pins;
}

/** Checks the pins of the boxes (default: every box that pins one); the exit code: 0 all match, 1 not. */
export async function checkChecksums(requested: string[], refresh: boolean): Promise<number> {
  const boxes = requested.length ? requested : listBoxes().filter((box) => pinsOf(loadDefinition(box)).length > 0);
  let allGood = true;
  for (const box of boxes) {
    const loaded = loadDefinition(box);
    if (!loaded.definition.base.iso) console.log(`${box}: no ISO (its base is ${loaded.definition.base.kind})`);
    for (const pin of pinsOf(loaded)) {
      if (!(await checkPin(box, loaded, pin, refresh))) allGood = false;
    }
  }
  return allGood ? 0 : 1;
}

/** Checks one pin, says what it found in one line, and rewrites it with `refresh`; false when it does not match. */
async function checkPin(box: string, loaded: LoadedDefinition, pin: Pin, refresh: boolean): Promise<boolean> {
  let published: string;
  try {
    published = await pin.published();
  } catch (error) {
    console.log(`${box}: could not check ${pin.file}: ${(error as Error).message}`);
    return false;
  }
  if (published === pin.pinned) {
    console.log(`${box}: ${pin.file} ${pin.pinned} matches ${pin.source}`);
    return true;
  }
  const file = loaded.files.find((candidate) => parseDocument(readFileSync(candidate, 'utf8')).hasIn(pin.keyPath));
  if (!refresh || !file) {
    console.log(`${box}: ${pin.file} is pinned to ${pin.pinned}, but ${pin.says} ${published}${file ? ` (set in ${displayPath(file)}; --refresh rewrites it)` : ''}`);
    return false;
  }
  const doc = parseDocument(readFileSync(file, 'utf8'));
  doc.setIn(pin.keyPath, pin.written(published));
  await writeFileAtomic(file, doc.toString());
  loadDefinition(box); // the rewritten file must still be a valid definition
  console.log(`${box}: ${displayPath(file)}: ${pin.file} ${pin.pinned} -> ${published}`);
  return true;
}
