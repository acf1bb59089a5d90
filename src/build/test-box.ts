// `boxsmith test <box>`: smoke-test boxes already built (npm run test:box).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chooseAccelerator } from './accelerator.ts';
import { boxDirectory } from './pipeline.ts';
import { withRunContext } from './run-context.ts';
import { displayLine, hypervisorInstalled } from './run.ts';
import { loadDefinition } from '../definitions/load.ts';
import type { Provider } from '../definitions/schema.ts';
import { claimOutputFolders } from '../run-settings.ts';
import { boxFiles, builtVersions, readChecksumFile } from '../store/box-store.ts';
import { cacheRoot } from '../inputs/iso.ts';
import { boxProvider } from '../render/context.ts';
import { resultTable } from '../smoke/report.ts';
import { smokeTest, type SmokeResult } from '../smoke/smoke.ts';

export interface TestBoxRequest {
  box: string;
  /** The providers asked for by name; none: every provider of the box that has a built box. */
  providers: Provider[];
  /** The version to test; the newest built by default. */
  version?: string;
  dockerImage?: string;
  boxesDir: string;
  logsDir: string;
}

/** `boxsmith test`: smoke-tests built boxes; the exit code (0 passed, 1 failed or nothing to test, 130/143 interrupted). */
export async function testBuiltBox(request: TestBoxRequest): Promise<number> {
  const { box, providers: requested, boxesDir, logsDir } = request;
  const loaded = loadDefinition(box);
  claimOutputFolders({ boxes: boxesDir, logs: logsDir, cache: cacheRoot() });
  const { org, box_name } = loaded.definition;
  const providers = requested.length ? requested : loaded.definition.providers;
  const targets: { provider: Provider; version: string; boxFile: string }[] = [];
  for (const provider of providers) {
    const versions = request.version ? [request.version] : builtVersions(boxesDir, org, box_name, boxProvider(provider));
    const version = versions[0];
    const boxFile = version && boxFiles(boxDirectory(boxesDir, { loaded, provider }, version), boxProvider(provider)).box;
    if (!version || !boxFile || !existsSync(boxFile)) {
      if (requested.length) {
        console.error(`boxsmith: no ${provider} box of ${org}/${box_name}${request.version ? ` ${request.version}` : ''} in ${boxesDir}: build it first (npm run build:box -- ${box} --provider ${provider})`);
        return 1;
      }
      continue;
    }
    if (!hypervisorInstalled(provider)) {
      console.log(`skipping ${provider}: its hypervisor is not installed on this host`);
      continue;
    }
    targets.push({ provider, version, boxFile });
  }
  if (!targets.length) {
    console.error(`boxsmith: no built box of ${org}/${box_name} to test in ${boxesDir}`);
    return 1;
  }

  const outcome = await withRunContext(logsDir, async ({ logRoot, signal, watchdog }) => {
    const accelerator = await chooseAccelerator(loaded.definition.qemu.accelerator, cacheRoot());
    const results: SmokeResult[] = [];
    for (const target of targets) {
      const sha256 = readChecksumFile(target.boxFile);
      console.log(`testing ${target.boxFile}`);
      const result = await smokeTest({
        loaded,
        provider: target.provider,
        boxFile: target.boxFile,
        sha256,
        version: target.version,
        logDir: path.join(logRoot, `${box}-${target.provider}`, 'smoke'),
        signal,
        watchdog,
        accelerator: accelerator.accelerator,
        ...(request.dockerImage ? { dockerImage: request.dockerImage } : {}),
        onLine: (line) => console.log(`  | ${displayLine(line)}`),
      });
      console.log(resultTable(result));
      results.push(result);
      if (signal.aborted) break;
    }
    return results;
  });
  if (outcome.interruptExitCode !== null) return outcome.interruptExitCode;
  return outcome.value.every((r) => r.passed) ? 0 : 1;
}
