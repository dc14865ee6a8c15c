import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The import boundaries of the whole repository (../../.dependency-cruiser.cjs,
 * dependency-cruiser): dependencies run one way, no runtime import cycle, the
 * contract and the renderer stay free of Node and of the agent's code. Run
 * with the contract suite because it is quick; `npm run lint:deps` runs the
 * same check by hand.
 */
const root = path.resolve(import.meta.dirname, '../..');
const config = path.join(root, '.dependency-cruiser.cjs');
const depcruise = path.join(root, 'node_modules/.bin/depcruise');

function cruise(cwd: string, paths: string[]): { code: number | null; output: string } {
  const result = spawnSync(depcruise, ['--config', config, '--output-type', 'err', ...paths], { cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, output: `${result.stdout}${result.stderr}${result.error ? String(result.error) : ''}` };
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'tandem-boundaries-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(scratch, 'tree-'));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

describe('import boundaries', () => {
  it('hold in the repository: no violation of .dependency-cruiser.cjs', () => {
    const { code, output } = cruise(root, ['agents/src', 'contract/src', 'main/src', 'renderer/src']);
    expect(output).toMatch(/no dependency violations found/);
    expect(code, output).toBe(0);
  }, 120_000);

  it('catch an upward import, a runtime cycle, Node in the renderer, the service in clusters and a type-only cycle in replication (and leave one elsewhere alone)', () => {
    const dir = tree({
      'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'esnext', moduleResolution: 'bundler', allowImportingTsExtensions: true, noEmit: true } }),
      'agents/src/nbd/server.ts': "import { link } from '../replication/peers.ts';\nexport const serve = link;\n",
      'agents/src/replication/peers.ts': 'export const link = 1;\n',
      'agents/src/flash/a.ts': "import { b } from './b.ts';\nexport const a = b + 1;\n",
      'agents/src/flash/b.ts': "import { a } from './a.ts';\nexport const b = () => a;\n",
      'agents/src/storage/x.ts': "import type { Y } from './y.ts';\nexport const x = 1; export type X = Y;\n",
      'agents/src/storage/y.ts': "import { x } from './x.ts';\nexport type Y = typeof x;\n",
      'renderer/src/app.ts': "import fs from 'node:fs';\nexport const read = fs.readFileSync;\n",
      // Clusters read sessions through SessionReader: even a type import of the service is refused there.
      'agents/src/replication/service.ts': 'export class ReplicationService {}\n',
      'agents/src/replication/clusters/manager.ts': "import type { ReplicationService } from '../service.ts';\nexport type M = ReplicationService;\n",
      // In replication even a type-only cycle is refused: parts take the hooks they use (hooks.ts), not the facade.
      'agents/src/replication/facade.ts': "import { Part } from './part.ts';\nexport class Facade { part = new Part(this); }\n",
      'agents/src/replication/part.ts': "import type { Facade } from './facade.ts';\nexport class Part { constructor(readonly facade: Facade) {} }\n",
      // The CDP journal sits on storage alone, and storage knows nothing of it.
      'agents/src/cdp/journal.ts': "import { link } from '../replication/peers.ts';\nexport const journal = link;\n",
      'agents/src/storage/engine.ts': "import { journal } from '../cdp/journal.ts';\nexport const engine = journal;\n",
      // Alerts read the parts; no part imports alerts.
      'agents/src/alerts/evaluator.ts': 'export const evaluate = () => 1;\n',
      'agents/src/replication/mirroring.ts': "import { evaluate } from '../alerts/evaluator.ts';\nexport const mirror = evaluate;\n",
    });
    const { code, output } = cruise(dir, ['agents/src', 'renderer/src']);
    expect(code).not.toBe(0);
    expect(output).toMatch(/nbd-without-replication: agents\/src\/nbd\/server\.ts → agents\/src\/replication\/peers\.ts/);
    expect(output).toMatch(/no-runtime-cycle: agents\/src\/flash\/(a|b)\.ts/);
    expect(output).toMatch(/renderer-no-node: renderer\/src\/app\.ts → (node:)?fs/);
    expect(output).toMatch(/clusters-and-history-read-sessions: agents\/src\/replication\/clusters\/manager\.ts → agents\/src\/replication\/service\.ts/);
    expect(output).toMatch(/cdp-on-storage: agents\/src\/cdp\/journal\.ts → agents\/src\/replication\/peers\.ts/);
    expect(output).toMatch(/storage-is-the-bottom: agents\/src\/storage\/engine\.ts → agents\/src\/cdp\/journal\.ts/);
    expect(output).toMatch(/alerts-read-the-parts: agents\/src\/replication\/mirroring\.ts → agents\/src\/alerts\/evaluator\.ts/);
    expect(output).toMatch(/no-cycle-in-replication: agents\/src\/replication\/(facade|part)\.ts/);
    expect(output).not.toMatch(/storage\/(x|y)\.ts/);
  }, 120_000);
});
