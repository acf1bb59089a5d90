// Just enough ELF parsing to list section names, so boxsmith can tell Go
// programs (Packer and its plugins) from others: Go's runtime prints all
// goroutine stacks on SIGQUIT, which is the best diagnostic a frozen Packer
// can give, but SIGQUIT would merely kill (or core-dump) anything else.

import { closeSync, openSync, readSync } from 'node:fs';

/** Section names the Go toolchain writes into every ELF binary it links. */
const GO_SECTIONS = ['.go.buildinfo', '.note.go.buildid', '.gopclntab'];

const MAX_SECTION_TABLE_BYTES = 4 * 1024 * 1024;
const MAX_NAME_TABLE_BYTES = 1024 * 1024;

/** Section names of an ELF file, or null when the file is not ELF or cannot be read. */
export function elfSectionNames(path: string): string[] | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const read = (offset: number, length: number): Buffer | null => {
      const buffer = Buffer.alloc(length);
      const got = readSync(fd, buffer, 0, length, offset);
      return got === length ? buffer : null;
    };
    const ident = read(0, 64);
    if (!ident || ident.readUInt32BE(0) !== 0x7f454c46) return null;
    const is64 = ident[4] === 2;
    const littleEndian = ident[5] === 1;
    const u16 = (b: Buffer, at: number): number => (littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at));
    const u32 = (b: Buffer, at: number): number => (littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at));
    const u64 = (b: Buffer, at: number): number => Number(littleEndian ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at));
    const word = (b: Buffer, at: number): number => (is64 ? u64(b, at) : u32(b, at));

    const sectionTableOffset = is64 ? u64(ident, 0x28) : u32(ident, 0x20);
    const entrySize = u16(ident, is64 ? 0x3a : 0x2e);
    let count = u16(ident, is64 ? 0x3c : 0x30);
    let nameTableIndex = u16(ident, is64 ? 0x3e : 0x32);
    if (sectionTableOffset === 0 || entrySize < (is64 ? 64 : 40)) return [];

    // Extended numbering: huge counts live in section 0 (sh_size / sh_link).
    const first = read(sectionTableOffset, entrySize);
    if (!first) return null;
    if (count === 0) count = word(first, is64 ? 32 : 20);
    if (nameTableIndex === 0xffff) nameTableIndex = u32(first, is64 ? 40 : 24);
    if (count * entrySize > MAX_SECTION_TABLE_BYTES || nameTableIndex >= count) return null;

    const table = read(sectionTableOffset, count * entrySize);
    if (!table) return null;
    const sectionOffset = (index: number): number => word(table, index * entrySize + (is64 ? 24 : 16));
    const sectionSize = (index: number): number => word(table, index * entrySize + (is64 ? 32 : 20));
    const namesSize = Math.min(sectionSize(nameTableIndex), MAX_NAME_TABLE_BYTES);
    const names = read(sectionOffset(nameTableIndex), namesSize);
    if (!names) return null;

    const result: string[] = [];
    for (let index = 0; index < count; index++) {
      const nameOffset = u32(table, index * entrySize);
      if (nameOffset >= names.length) continue;
      const end = names.indexOf(0, nameOffset);
      result.push(names.toString('latin1', nameOffset, end < 0 ? names.length : end));
    }
    return result;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** True for an ELF binary linked by the Go toolchain. */
export function isGoBinary(path: string): boolean {
  const names = elfSectionNames(path);
  return names !== null && names.some((name) => GO_SECTIONS.includes(name));
}

/** Packer and its plugins are Go; matching the name also works when /proc/PID/exe is unreadable. */
export function isPackerName(comm: string): boolean {
  return comm === 'packer' || comm.startsWith('packer-plugin-') || comm.startsWith('packer-builder-');
}
