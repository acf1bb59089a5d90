// The catalog server with real sockets: symbolic links inside the tree are not followed, idle and
// slow connections are closed by the server, and connections beyond the cap are refused.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCatalogServer, type CatalogServer } from '../../src/publish/server.ts';

const root = mkdtempSync(path.join(tmpdir(), 'boxsmith-serve-hardening-'));
let server: CatalogServer;
let idleServer: CatalogServer;

before(async () => {
  mkdirSync(path.join(root, 'phusion/box/1.0.0'), { recursive: true });
  writeFileSync(path.join(root, 'phusion/box/1.0.0/libvirt.box'), 'a box');
  writeFileSync(path.join(root, 'phusion/.credentials'), 'hidden');
  symlinkSync('.credentials', path.join(root, 'phusion/innocent.json'));
  symlinkSync('box', path.join(root, 'phusion/alias'));
  server = await startCatalogServer({ root, port: 0 });
  idleServer = await startCatalogServer({ root, port: 0, idleTimeoutMs: 300 });
});
after(async () => {
  await server.close();
  await idleServer.close();
  rmSync(root, { recursive: true, force: true });
});

function open(target: CatalogServer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(target.port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));
}

describe('catalog server hardening', () => {
  it('an in-tree symlink to a hidden file, or through a linked folder, is not served', async () => {
    for (const urlPath of ['/phusion/innocent.json', '/phusion/alias/1.0.0/libvirt.box']) {
      const response = await fetch(`${server.url}${urlPath}`);
      assert.equal(response.status, 404, urlPath);
      assert.doesNotMatch(await response.text(), /hidden|a box/);
    }
    const direct = await fetch(`${server.url}/phusion/box/1.0.0/libvirt.box`);
    assert.equal(await direct.text(), 'a box');
  });

  it('an idle connection is closed by the server', { timeout: 20_000 }, async () => {
    const socket = await open(idleServer);
    socket.on('error', () => {});
    await closed(socket);
    assert.equal(socket.destroyed, true);
  });

  it('a request whose headers never end is closed by the server', { timeout: 20_000 }, async () => {
    const socket = await open(idleServer);
    socket.on('error', () => {});
    socket.write('GET /phusion/box/1.0.0/libvirt.box HTTP/1.1\r\nHost: x\r\n');
    await closed(socket);
  });

  it('connections beyond the cap are closed at once, while the others stay open', { timeout: 20_000 }, async () => {
    // A server of its own: no keep-alive connection of another test counts.
    const capped = await startCatalogServer({ root, port: 0 });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 64; i++) sockets.push(await open(capped));
      const extra = await open(capped);
      extra.on('error', () => {});
      await closed(extra);
      assert.ok(sockets.every((socket) => !socket.destroyed), 'the first 64 are still open');
    } finally {
      for (const socket of sockets) socket.destroy();
      await capped.close();
    }
  });
});
