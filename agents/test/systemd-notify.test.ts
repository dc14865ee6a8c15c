/**
 * The agent under systemd's notify protocol (Type=notify, WatchdogSec),
 * spoken for real: the test binds a Unix datagram socket as $NOTIFY_SOCKET
 * (python3, the receiving side systemd plays) and runs a real agent. READY=1
 * must come only once the API answers and the NBD and peer-link listeners
 * accept connections; WATCHDOG=1 must repeat at half WATCHDOG_USEC;
 * STOPPING=1 must come on SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentInfoSchema } from '@tandem/contract';
import { AgentApiClient } from '../src/cli/api-client.ts';
import { loadAdminCredentials } from '../src/tls/paths.ts';
import { initTempDataDir, startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { until } from './helpers/session-views.ts';

const python = spawnSync('python3', ['--version']).status === 0;
const receiverScript = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("listening"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

interface Received {
  at: number;
  fields: Map<string, string>;
}

/** A stand-in for systemd's notify socket: every datagram, parsed, with its arrival time. */
async function notifySocket(file: string): Promise<{ messages: Received[]; onMessage: (listener: (message: Received) => void) => void; close: () => void }> {
  const child: ChildProcess = spawn('python3', ['-c', receiverScript, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: Received[] = [];
  const listeners: Array<(message: Received) => void> = [];
  let buffered = '';
  let listening: () => void;
  const bound = new Promise<void>((resolve) => (listening = resolve));
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffered.slice(0, newline)) as string;
      buffered = buffered.slice(newline + 1);
      if (line === 'listening') {
        listening();
        continue;
      }
      const fields = new Map(line.split('\n').filter(Boolean).map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)] as [string, string]));
      const message = { at: Date.now(), fields };
      messages.push(message);
      for (const listener of listeners) listener(message);
    }
  });
  await Promise.race([bound, new Promise((_, reject) => setTimeout(() => reject(new Error('the notify socket did not bind in 10 s')), 10_000))]);
  return { messages, onMessage: (listener) => listeners.push(listener), close: () => child.kill('SIGKILL') };
}

function connects(address: string): Promise<boolean> {
  const at = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = net.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe.skipIf(!python)('systemd notify protocol (Type=notify, WatchdogSec)', () => {
  let agent: AgentProcess | null = null;
  let receiver: Awaited<ReturnType<typeof notifySocket>> | null = null;
  let dataDir = '';
  afterAll(async () => {
    await agent?.kill('SIGKILL').catch(() => {});
    receiver?.close();
    if (dataDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
  });

  it('sends READY=1 only once every listener answers, WATCHDOG=1 at half WATCHDOG_USEC, STOPPING=1 on SIGTERM', async () => {
    dataDir = await initTempDataDir({ site: 'notified' });
    const socketFile = path.join(path.dirname(dataDir), 'notify.sock');
    receiver = await notifySocket(socketFile);
    // What the agent could do the moment READY=1 arrived: the API answered, NBD and the peer link accepted.
    let atReady = null as Promise<{ api: string; nbd: boolean; link: boolean; status: string }> | null;
    receiver.onMessage((message) => {
      if (message.fields.get('READY') !== '1' || atReady) return;
      const status = message.fields.get('STATUS') ?? '';
      atReady = (async () => {
        const address = (name: string) => new RegExp(`${name} (\\S+?)(,|$)`).exec(status)?.[1] ?? '';
        const client = new AgentApiClient(address('api'), await loadAdminCredentials(dataDir));
        try {
          const info = await client.call('GET', '/v1/agent', AgentInfoSchema);
          return { api: info.site, nbd: await connects(address('nbd')), link: await connects(address('peer link')), status };
        } finally {
          client.close();
        }
      })();
    });
    agent = await startAgentProcess({ dataDir, env: { NOTIFY_SOCKET: socketFile, WATCHDOG_USEC: '600000' } });

    const ready = await until('READY=1', async () => receiver!.messages.find((message) => message.fields.get('READY') === '1'), 30_000);
    expect(ready.fields.get('MAINPID')).toBe(String(agent.pid));
    const state = await atReady!;
    expect(state).toEqual({ api: 'notified', nbd: true, link: true, status: expect.stringMatching(/^serving notified: api 127\.0\.0\.1:\d+, nbd 127\.0\.0\.1:\d+, peer link 127\.0\.0\.1:\d+$/) });
    // Nothing said "ready" before: READY=1 is the first message.
    expect(receiver.messages[0]).toBe(ready);

    // The watchdog pings repeat, every 300 ms (half of 600 ms): five of them, spaced neither much faster nor much slower.
    const pings = await until('five WATCHDOG=1', async () => {
      const got = receiver!.messages.filter((message) => message.fields.get('WATCHDOG') === '1');
      return got.length >= 5 ? got : null;
    }, 30_000);
    const gaps = pings.slice(1, 5).map((ping, index) => ping.at - pings[index].at);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(200);
    expect(Math.min(...gaps)).toBeLessThan(1_500);

    const exit = agent.kill('SIGTERM');
    const stopping = await until('STOPPING=1', async () => receiver!.messages.find((message) => message.fields.get('STOPPING') === '1'), 30_000);
    expect(stopping.fields.get('STATUS')).toBe('shutting down (SIGTERM)');
    expect(await exit).toEqual({ code: 0, signal: null });
    agent = null;
  });
});
