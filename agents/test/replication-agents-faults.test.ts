import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { agentCliJson, runCommand } from './helpers/run-command.ts';

/**
 * Real agent processes: a semi-sync session whose secondary fails writes
 * after acknowledging their arrival (TANDEM_TEST_FAIL_ARRIVAL_WRITES), and
 * a peer link that reaches a third agent with its own CA.
 */



interface EventJson {
  type: string;
  severity: string;
  message: string;
  data?: Record<string, unknown>;
}

async function eventsOf(agent: AgentProcess, type: string): Promise<EventJson[]> {
  const { events } = await agentCliJson<{ events: EventJson[] }>(agent, ['events', '--limit', '1000']);
  return events.filter((event) => event.type === type);
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

let h1: AgentProcess;
let h2: AgentProcess;
let gamma: AgentProcess;

beforeAll(async () => {
  [h1, h2, gamma] = await Promise.all([
    startAgentProcess({ site: 'alpha' }),
    startAgentProcess({ site: 'beta', env: { TANDEM_TEST_FAIL_ARRIVAL_WRITES: '3' } }),
    startAgentProcess({ site: 'gamma' }),
  ]);
  const token = await agentCliJson<{ token: string }>(h2, ['token']);
  await agentCliJson(h1, ['pair', '--with', h2.apiAddress, '--token', token.token]);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([h1?.stop(), h2?.stop(), gamma?.stop()]);
});

describe('agent processes', () => {
  it('semi-sync: secondary write failures after the arrival ack are repaired there; the host sees no error', async () => {
    for (const [agent, name] of [
      [h1, 'prod'],
      [h2, 'copy'],
    ] as const) {
      const created = await agent.cli(['volume', 'create', name, '32M']);
      expect(created.code, created.stderr).toBe(0);
    }
    await agentCliJson(h1, ['session', 'create', 'silver', '--type', 'semi-sync', '--peer', 'beta']);
    await agentCliJson(h1, ['session', 'add', 'silver', 'prod', 'copy']);
    await agentCliJson(h1, ['session', 'start', 'silver']);
    await until('prepared', async () => (await agentCliJson<{ state: string }>(h1, ['session', 'show', 'silver'])).state === 'prepared');

    // Twenty writes over NBD; the first three fail at the secondary after their arrival was acknowledged.
    const commands = Array.from({ length: 20 }, (_, i) => ['-c', `write -P 0x${(0x20 + i).toString(16)} ${i}M 96k`]).flat();
    const started = Date.now();
    const written = await runCommand('qemu-io', ['-f', 'raw', ...commands, h1.nbdUri('prod')]);
    expect(written.code, written.out).toBe(0);
    expect(written.out).not.toMatch(/error|failed/i);
    expect(Date.now() - started, 'host writes were not held up').toBeLessThan(20_000);

    const repaired = await until('three repairs at the secondary', async () => {
      const found = await eventsOf(h2, 'pair.repaired');
      return found.length >= 3 ? found : null;
    });
    expect(repaired).toHaveLength(3);
    expect(repaired.every((event) => event.data!.copied === true)).toBe(true);
    const failures = await eventsOf(h2, 'pair.repair');
    expect(failures.map((event) => event.severity)).toEqual(['warning', 'warning', 'warning']);
    const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri('prod'), h2.nbdUri('copy')]);
    expect(compare.out).toMatch(/Images are identical/);
    const verified = await agentCliJson<{ differingTracks: number; comparedTracks: number }>(h1, ['session', 'verify', 'silver']);
    expect(verified).toMatchObject({ differingTracks: 0, comparedTracks: 512 });
  }, 180_000);

  it('a link address answered by an agent with another CA: both ends refuse, the listener records peer.refused', async () => {
    const before = (await eventsOf(gamma, 'peer.refused')).length;
    // alpha now dials "beta" at gamma's link listener.
    await agentCliJson(h1, ['peers', 'set-link', 'beta', gamma.runInfo.linkAddress!]);
    await agentCliJson(h1, ['session', 'show', 'silver']);
    // A write makes alpha use the link (the session suspends when it cannot reach beta).
    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 30M 64k', h1.nbdUri('prod')]);
    expect(write.code, write.out).toBe(0);
    const refused = await until('peer.refused at gamma', async () => {
      const found = await eventsOf(gamma, 'peer.refused');
      return found.length > before ? found : null;
    });
    expect(refused.at(-1)!.severity).toBe('warning');
    const peers = await agentCliJson<{ peers: Array<{ site: string; link: string }> }>(h1, ['peers', 'list']);
    expect(peers.peers.find((peer) => peer.site === 'beta')!.link).not.toBe('connected');
    const down = await eventsOf(h1, 'link.down');
    expect(down.length).toBeGreaterThan(0);

    // Pointed back at beta, the session resumes by itself and converges.
    await agentCliJson(h1, ['peers', 'set-link', 'beta', h2.runInfo.linkAddress!]);
    await until('prepared again', async () => (await agentCliJson<{ state: string }>(h1, ['session', 'show', 'silver'])).state === 'prepared', 90_000);
    const compare = await runCommand('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', h1.nbdUri('prod'), h2.nbdUri('copy')]);
    expect(compare.out).toMatch(/Images are identical/);
  }, 180_000);
});
