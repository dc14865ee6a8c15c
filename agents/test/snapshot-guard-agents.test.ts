import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemSchema, VolumeBusyDetailSchema, VolumeInfoSchema, VolumeListSchema, type VolumeInfo } from '@tandem/contract';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { NbdBlockClient } from './helpers/nbd-block-client.ts';
import { runCommand } from './helpers/run-command.ts';

/**
 * Deleting a snapshot (or a volume) is refused while something depends on
 * it, at the CLI and the API: an open image over NBD, a flash relationship,
 * a snapshot-shipping session's kept snapshot. The refusal is `volume-busy`
 * naming the dependent and the step to take first, every dependent in
 * `detail.dependents` (VolumeBusyDetailSchema), and it changes nothing.
 *
 * A snapshot chain is no dependency in this engine: a snapshot's track
 * table holds its own references to the extents it shares (reference
 * counted), so deleting the snapshot it was taken from (or the volume under
 * both) takes nothing from it; it only loses its `source` name.
 */

const MiB = 1024 * 1024;
let alpha: AgentProcess;
let beta: AgentProcess;

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([{ site: 'alpha' }, { site: 'beta' }]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

const volume = (agent: AgentProcess, name: string): Promise<VolumeInfo> => agent.api.call('GET', `/v1/volumes/${name}`, VolumeInfoSchema);
const names = async (agent: AgentProcess) => (await agent.api.call('GET', '/v1/volumes', VolumeListSchema)).volumes.map((each) => each.name);

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** DELETE over the API, expecting a refusal: 409, the problem body, the dependents parsed with the contract's schema. */
async function refusedDelete(agent: AgentProcess, name: string) {
  const response = await agent.api.request('DELETE', `/v1/volumes/${name}`);
  expect(response.status).toBe(409);
  const problem = ProblemSchema.parse(response.body);
  expect(problem.problem).toBe('volume-busy');
  return { message: problem.message, dependents: VolumeBusyDetailSchema.parse(problem.detail).dependents };
}

async function qemuIo(uri: string, command: string): Promise<string> {
  const result = await runCommand('qemu-io', ['-f', 'raw', '-c', command, uri]);
  expect(result.code, result.out).toBe(0);
  expect(result.out).not.toMatch(/Pattern verification failed/);
  return result.out;
}

describe('deleting snapshots that something depends on', () => {
  it('an image open over NBD: refused naming the connections and the step; deleted once the client is gone', async () => {
    await alpha.cli(['volume', 'create', 'v', '16M']);
    await qemuIo(alpha.nbdUri('v'), 'write -P 0x41 0 2M');
    const made = await alpha.cli(['snapshot', 'create', 'v', 'v-pit', '--read-only']);
    expect(made.code, made.stderr).toBe(0);
    const client = await NbdBlockClient.connect(alpha.nbdHost, alpha.nbdPort, 'v-pit');
    const before = await volume(alpha, 'v-pit');

    const cli = await alpha.cli(['volume', 'delete', 'v-pit']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^error: volume-busy: v-pit is open by 1 NBD connection\(s\); disconnect its NBD clients first \(.*\), then delete it$/m);
    const api = await refusedDelete(alpha, 'v-pit');
    expect(api.dependents).toEqual([expect.objectContaining({ kind: 'nbd-export', connections: 1, step: 'disconnect its NBD clients' })]);
    expect(await volume(alpha, 'v-pit')).toEqual(before);
    const data = Buffer.alloc(4096);
    await client.readInto(0, data);
    expect(data.every((byte) => byte === 0x41), 'the image is still served').toBe(true);

    await client.close();
    await until('deleted once the client is gone', async () => (await alpha.cli(['volume', 'delete', 'v-pit'])).code === 0);
    expect(await names(alpha)).not.toContain('v-pit');
  });

  it('a flash relationship: refused naming the flash session and the withdraw; deleted once withdrawn', async () => {
    await alpha.cli(['snapshot', 'create', 'v', 'v-src']);
    await alpha.cli(['volume', 'create', 'v-flash', '16M']);
    const established = await alpha.cli(['flash', 'establish', '--name', 'pit', '--pair', 'v-src:v-flash', '--no-copy']);
    expect(established.code, established.stderr).toBe(0);
    const before = await volume(alpha, 'v-src');
    const cli = await alpha.cli(['volume', 'delete', 'v-src']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/volume-busy: v-src is the source of flash copy session pit \(\w+\); withdraw flash copy session pit first \(tandem-agent flash withdraw pit\)/);
    const api = await refusedDelete(alpha, 'v-src');
    expect(api.dependents).toEqual([expect.objectContaining({ kind: 'flash-copy', session: 'pit', role: 'source', action: 'tandem-agent flash withdraw pit' })]);
    expect(await volume(alpha, 'v-src')).toEqual(before);
    expect((await alpha.cli(['flash', 'withdraw', 'pit'])).code).toBe(0);
    const deleted = await alpha.cli(['volume', 'delete', 'v-src']);
    expect(deleted.code, deleted.stderr).toBe(0);
  });

  it("a snapshot-shipping session's kept snapshot: refused naming the session; the session deletes it itself when terminated", async () => {
    await alpha.cli(['volume', 'create', 'ship-p', '16M']);
    await beta.cli(['volume', 'create', 'ship-c', '16M']);
    await qemuIo(alpha.nbdUri('ship-p'), 'write -P 0x53 0 1M');
    for (const args of [
      ['session', 'create', 'nightly', '--type', 'snapshot-shipping', '--peer', 'beta', '--interval', '3600'],
      ['session', 'add', 'nightly', 'ship-p', 'ship-c'],
      ['session', 'start', 'nightly'],
    ]) {
      const result = await alpha.cli(args);
      expect(result.code, result.stderr).toBe(0);
    }
    const kept = await until('the first cycle shipped and its snapshot kept', async () => {
      const session = await alpha.cli(['session', 'show', 'nightly', '--json']);
      if (JSON.parse(session.stdout).state !== 'prepared') return null;
      return (await names(alpha)).find((name) => name.startsWith('tandem-ship-'));
    });
    const before = await volume(alpha, kept);
    const cli = await alpha.cli(['volume', 'delete', kept]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(new RegExp(`volume-busy: ${kept} is kept by snapshot-shipping session nightly \\(prepared\\).*first \\(tandem-agent session ship-now nightly, or tandem-agent session terminate nightly\\)`));
    const api = await refusedDelete(alpha, kept);
    expect(api.dependents).toEqual([expect.objectContaining({ kind: 'shipping-snapshot', session: 'nightly', sessionState: 'prepared' })]);
    expect(await volume(alpha, kept)).toEqual(before);
    // Still shipping after the refusal: a cycle commits and replaces the kept snapshot by its own.
    const cycle = await alpha.cli(['session', 'ship-now', 'nightly', '--json']);
    expect(cycle.code, cycle.stderr).toBe(0);
    await until('the old kept snapshot replaced', async () => !(await names(alpha)).includes(kept));
    expect((await alpha.cli(['session', 'terminate', 'nightly'])).code).toBe(0);
    await until('terminating deletes the kept snapshot', async () => !(await names(alpha)).some((name) => name.startsWith('tandem-ship-')));
  });

  it('a snapshot chain is no dependency: deleting the snapshot (or volume) another was taken from leaves it whole', async () => {
    await alpha.cli(['volume', 'create', 'base', '16M']);
    await qemuIo(alpha.nbdUri('base'), 'write -P 0x61 0 4M');
    await alpha.cli(['snapshot', 'create', 'base', 'base-1']);
    await qemuIo(alpha.nbdUri('base-1'), 'write -P 0x62 1M 1M');
    await alpha.cli(['snapshot', 'create', 'base-1', 'base-2']);
    expect((await volume(alpha, 'base-2')).source).toBe('base-1');
    expect((await alpha.cli(['volume', 'delete', 'base-1'])).code).toBe(0);
    expect((await alpha.cli(['volume', 'delete', 'base'])).code).toBe(0);
    const orphan = await volume(alpha, 'base-2');
    expect(orphan.source).toBeNull();
    expect(orphan.allocatedBytes).toBe(4 * MiB);
    await qemuIo(alpha.nbdUri('base-2'), 'read -P 0x61 0 1M');
    await qemuIo(alpha.nbdUri('base-2'), 'read -P 0x62 1M 1M');
    await qemuIo(alpha.nbdUri('base-2'), 'read -P 0x61 2M 2M');
  });
});
