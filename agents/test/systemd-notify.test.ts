/**
 * The agent under systemd's notify protocol (Type=notify, WatchdogSec),
 * spoken for real: the test binds a Unix datagram socket as $NOTIFY_SOCKET
 * (python3, the receiving side systemd plays) and runs a real agent. READY=1
 * must come only once the API answers and the NBD and peer-link listeners
 * accept connections; WATCHDOG=1 must repeat at half WATCHDOG_USEC;
 * STOPPING=1 must come on SIGTERM; a reload (SIGHUP) is announced with
 * RELOADING=1 and ends with READY=1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentInfoSchema } from '@tandem/contract';
import { AgentApiClient } from '../src/cli/api-client.ts';
import { loadAuthority, issueWithNewKey } from '../src/tls/authority.ts';
import { serverAltNames } from '../src/tls/files.ts';
import { certificateFingerprint } from '../src/tls/fingerprint.ts';
import { loadAdminCredentials, tlsPaths } from '../src/tls/paths.ts';
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

describe.skipIf(!python)('reload (SIGHUP, systemctl reload)', () => {
  let agent: AgentProcess | null = null;
  let receiver: Awaited<ReturnType<typeof notifySocket>> | null = null;
  let dataDir = '';
  afterAll(async () => {
    await agent?.stop();
    receiver?.close();
    if (dataDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
  });

  /** The certificate the API presents to a new connection. */
  function servedFingerprint(address: string): Promise<string> {
    const at = address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), rejectUnauthorized: false }, () => {
        const der = socket.getPeerCertificate().raw;
        socket.destroy();
        resolve(certificateFingerprint(new X509Certificate(der).toString()));
      });
      socket.once('error', reject);
    });
  }

  it('serves a new server certificate from DATA/tls on new connections, and keeps the current one when the new pair is bad', async () => {
    dataDir = await initTempDataDir({ site: 'reloaded' });
    const socketFile = path.join(path.dirname(dataDir), 'notify.sock');
    receiver = await notifySocket(socketFile);
    agent = await startAgentProcess({ dataDir, env: { NOTIFY_SOCKET: socketFile } });
    const files = tlsPaths(dataDir);
    const original = await readFile(files.serverCertificate, 'utf8');
    expect(await servedFingerprint(agent.apiAddress)).toBe(certificateFingerprint(original));

    // A new certificate for the server from the agent's own CA, as an operator would put it in place.
    const authority = await loadAuthority(await readFile(files.caCertificate, 'utf8'), await readFile(files.caKey, 'utf8'));
    const renewed = await issueWithNewKey(authority, { commonName: 'reloaded', usage: 'server', altNames: serverAltNames() });
    const renewedFingerprint = certificateFingerprint(renewed.certificatePem);
    await writeFile(files.serverKey, renewed.keyPem, { mode: 0o600 });
    await writeFile(files.serverCertificate, renewed.certificatePem);
    const readyBefore = receiver.messages.filter((message) => message.fields.get('READY') === '1').length;
    process.kill(agent.pid, 'SIGHUP');
    const reloaded = await until('READY=1 after the reload', async () => receiver!.messages.filter((message) => message.fields.get('READY') === '1')[readyBefore], 30_000);
    const reloading = receiver.messages.findIndex((message) => message.fields.get('RELOADING') === '1');
    expect(reloading).toBeGreaterThanOrEqual(0);
    expect(reloading).toBeLessThan(receiver.messages.indexOf(reloaded));
    expect(reloaded.fields.get('STATUS')).toBe(`reloaded: certificate ${renewedFingerprint}`);
    expect(await servedFingerprint(agent.apiAddress)).toBe(renewedFingerprint);
    expect((await agent.api.call('GET', '/v1/agent', AgentInfoSchema)).certificateFingerprint).toBe(renewedFingerprint);

    // A key that does not belong to the certificate: refused, the renewed pair stays, the agent serves on.
    await writeFile(files.serverCertificate, original);
    process.kill(agent.pid, 'SIGHUP');
    const refused = await until('READY=1 after the bad reload', async () => receiver!.messages.filter((message) => message.fields.get('READY') === '1')[readyBefore + 1], 30_000);
    expect(refused.fields.get('STATUS')).toMatch(/^reload failed, the current certificate stays: the server certificate and key in .* do not make a TLS identity/);
    expect(await servedFingerprint(agent.apiAddress)).toBe(renewedFingerprint);
    expect((await agent.api.call('GET', '/v1/agent', AgentInfoSchema)).site).toBe('reloaded');
  });
});
