import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';

/**
 * Three real agent processes paired through the CLI: alpha (the control agent,
 * primary of a), bravo (primary of b) and charlie (the secondary). The
 * session is defined with `session add --primary-agent`, written through
 * NBD with qemu-io at both primaries, and compared with qemu-img.
 */

interface SessionJson {
  state: string;
  consistencyTime: string | null;
  pairs: Array<{ h1Volume: string; state: string; outOfSyncTracks: number; primarySite?: string }>;
}

async function show(agent: AgentProcess, session: string): Promise<SessionJson> {
  return agentCliJson<SessionJson>(agent, ['session', 'show', session]);
}

async function waitUntil(agent: AgentProcess, session: string, check: (info: SessionJson) => boolean, what: string, timeoutMs = 60_000): Promise<SessionJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await show(agent, session);
    if (check(info)) return info;
    if (Date.now() > deadline) throw new Error(`session ${session} never ${what}: ${JSON.stringify(info)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

let alpha: AgentProcess;
let bravo: AgentProcess;
let charlie: AgentProcess;

beforeAll(async () => {
  // Each paired with every later one: alpha with bravo and charlie, bravo with charlie.
  [alpha, bravo, charlie] = await startPairedAgents([{ site: 'alpha' }, { site: 'bravo' }, { site: 'charlie' }]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), bravo?.stop(), charlie?.stop()]);
});

describe('three agents, one async session with primaries on two of them', () => {
  it('is defined with the CLI, mirrors NBD writes at both primaries and converges to identical images', async () => {
    for (const [agent, name] of [
      [alpha, 'a'],
      [bravo, 'b'],
      [charlie, 'a2'],
      [charlie, 'b2'],
    ] as const) {
      const created = await agent.cli(['volume', 'create', name, '32M']);
      expect(created.code, created.stderr).toBe(0);
    }
    const before = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 4M', bravo.nbdUri('b')]);
    expect(before.code, before.out).toBe(0);

    await agentCliJson(alpha, ['session', 'create', 'orders', '--type', 'async', '--peer', 'charlie']);
    await agentCliJson(alpha, ['session', 'add', 'orders', 'a', 'a2']);
    const added = await alpha.cli(['session', 'add', 'orders', 'b', 'b2', '--primary-agent', 'bravo']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/added bravo:b -> b2 to orders/);
    // Other session types refuse a primary on another agent.
    await agentCliJson(alpha, ['session', 'create', 'strict', '--type', 'sync', '--peer', 'charlie']);
    const refused = await alpha.cli(['session', 'add', 'strict', 'b', 'b2', '--primary-agent', 'bravo']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not-supported/);

    await agentCliJson(alpha, ['session', 'start', 'orders']);
    const prepared = await waitUntil(alpha, 'orders', (info) => info.state === 'prepared', 'prepared');
    expect(prepared.pairs.map((pair) => [pair.h1Volume, pair.primarySite ?? 'alpha'])).toEqual([
      ['a', 'alpha'],
      ['b', 'bravo'],
    ]);
    // The member and the secondary know the session too.
    expect((await show(bravo, 'orders')).state).toBe('prepared');
    await waitUntil(charlie, 'orders', (info) => info.state === 'prepared', 'prepared at charlie');

    // Host writes at both primaries, one after the other.
    const writeA = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x41 1M 3M', alpha.nbdUri('a')]);
    expect(writeA.code, writeA.out).toBe(0);
    const writeB = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x42 8M 5M', bravo.nbdUri('b')]);
    expect(writeB.code, writeB.out).toBe(0);
    const written = Date.now();
    await waitUntil(
      alpha,
      'orders',
      (info) => info.consistencyTime !== null && Date.parse(info.consistencyTime) > written,
      'caught up with the writes',
    );
    for (const [primary, volume, secondary] of [
      [alpha, 'a', 'a2'],
      [bravo, 'b', 'b2'],
    ] as const) {
      const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', primary.nbdUri(volume), charlie.nbdUri(secondary)]);
      expect(compare.out, `${volume} vs ${secondary}`).toMatch(/Images are identical/);
    }

    // Suspend and terminate at the control agent reach every agent.
    await agentCliJson(alpha, ['session', 'suspend', 'orders']);
    await waitUntil(bravo, 'orders', (info) => info.state === 'suspended', 'suspended at bravo', 20_000);
    await agentCliJson(alpha, ['session', 'terminate', 'orders']);
    await waitUntil(bravo, 'orders', (info) => info.state === 'defined', 'defined at bravo', 20_000);
    await waitUntil(charlie, 'orders', (info) => info.state === 'defined', 'defined at charlie', 20_000);
  }, 240_000);
});
