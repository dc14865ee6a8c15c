/**
 * The peer link between two processes, shared by bench:link and bench:mirror:
 * credentials of two sites, a child process answering `pair.write`-shaped
 * requests at once (no disk) or running the FaultProxy in front of it, and the
 * 4K qd1 round-trip measurement.
 */
import { fork } from 'node:child_process';
import pino from 'pino';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import { FaultProxy } from '../test/helpers/fault-proxy.ts';
import { createAuthority, issueWithNewKey } from '../src/tls/authority.ts';
import { certificateFingerprint } from '../src/tls/fingerprint.ts';
import { PeerLinkClient, PeerLinkServer, type LinkCredentials, type PeerRecord } from '../src/replication/link/peer-link.ts';

export const logger = pino({ level: 'silent' });
const linkEntry = fileURLToPath(new URL('./link.ts', import.meta.url));
const runTs = fileURLToPath(new URL('../bin/run-ts.mjs', import.meta.url));

export interface Setup {
  serverCredentials: LinkCredentials;
  clientRecord: PeerRecord;
  serverRecord: (address: string) => PeerRecord;
  clientCredentials: LinkCredentials;
}

export async function credentials(): Promise<Setup> {
  const sites = await Promise.all(
    ['alpha', 'beta'].map(async (name) => {
      const { authority } = await createAuthority(name, `${name}-id`);
      const server = await issueWithNewKey(authority, { commonName: `${name} link`, usage: 'server', altNames: ['127.0.0.1'] });
      const client = await issueWithNewKey(authority, { commonName: `${name} peer`, usage: 'client' });
      return {
        name,
        caPem: authority.certificatePem,
        server: { certificatePem: server.certificatePem, keyPem: server.keyPem, caPem: authority.certificatePem },
        client: { certificatePem: client.certificatePem, keyPem: client.keyPem, caPem: authority.certificatePem },
      };
    }),
  );
  const [alpha, beta] = sites;
  const record = (site: (typeof sites)[number], linkAddress: string): PeerRecord => ({
    agentId: `${site.name}-id`,
    site: site.name,
    caPem: site.caPem,
    caFingerprint: certificateFingerprint(site.caPem),
    linkAddress,
  });
  return {
    serverCredentials: beta.server,
    clientRecord: record(alpha, 'unused:1'),
    serverRecord: (address) => record(beta, address),
    clientCredentials: alpha.client,
  };
}

/** Child process roles: the link server (beta) or the proxy in front of it. */
export async function child(role: string): Promise<void> {
  const input = JSON.parse(fs.readFileSync(process.env.TANDEM_BENCH_LINK!, 'utf8')) as {
    serverCredentials: LinkCredentials;
    clientRecord: PeerRecord;
    target?: string;
  };
  let port: number;
  let proxy: FaultProxy | null = null;
  if (role === 'serve') {
    const server = new PeerLinkServer({
      credentials: input.serverCredentials,
      peers: [input.clientRecord],
      logger,
      onRefused: () => {},
      handler: ({ payload }) => {
        if (!payload) throw new Error('no payload');
        return {};
      },
    });
    port = (await server.listen('127.0.0.1', 0)).port;
  } else {
    const [host, targetPort] = input.target!.split(':');
    proxy = await FaultProxy.start({ host, port: Number(targetPort) });
    port = proxy.port;
  }
  process.send!({ port });
  // Answers 'cpu' with its CPU time so far; { latency } sets the proxy's added delay (alpha -> beta, like
  // bench:mirror's) and answers it; exits cleanly on 'exit' (so `node --cpu-prof` writes its profile too).
  process.on('message', (message) => {
    if (message === 'cpu') process.send!({ cpu: process.cpuUsage() });
    else if (typeof message === 'object' && message !== null && 'latency' in message) {
      const ms = Number((message as { latency: number }).latency);
      proxy?.setLatency(ms, 'up');
      process.send!({ latency: ms });
    } else process.exit(0);
  });
}

export interface Child {
  port: number;
  /** The child's CPU time so far, µs. */
  cpu: () => Promise<number>;
  /** The proxy child only: sets its added delay (client -> server), ms. */
  setLatency: (ms: number) => Promise<void>;
  kill: () => void;
}

export async function startChild(role: string, file: string): Promise<Child> {
  const proc = fork(runTs, [linkEntry, `--child-${role}`], { env: { ...process.env, TANDEM_BENCH_LINK: file }, stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (message) => resolve((message as { port: number }).port));
    proc.once('exit', (code) => reject(new Error(`link bench ${role} exited with ${code}`)));
  });
  process.once('exit', () => proc.kill());
  const cpu = () =>
    new Promise<number>((resolve) => {
      proc.once('message', (message) => {
        const usage = (message as { cpu: NodeJS.CpuUsage }).cpu;
        resolve(usage.user + usage.system);
      });
      proc.send('cpu');
    });
  const setLatency = (ms: number) =>
    new Promise<void>((resolve) => {
      proc.once('message', () => resolve());
      proc.send({ latency: ms });
    });
  return { port, cpu, setLatency, kill: () => proc.send('exit') };
}

export const ownCpu = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};

/** Runs `measure`, adding the CPU µs per call both ends (and the proxy) spent meanwhile. */
export async function withCpu<T extends { calls: number }>(
  children: Child[],
  measure: () => Promise<T>,
): Promise<T & { clientCpu: number; serverCpu: number; proxyCpu: number }> {
  const before = [ownCpu(), ...(await Promise.all(children.map((c) => c.cpu())))];
  const result = await measure();
  const after = [ownCpu(), ...(await Promise.all(children.map((c) => c.cpu())))];
  const per = (i: number) => (after[i] - before[i]) / result.calls;
  return { ...result, clientCpu: per(0), serverCpu: per(1), proxyCpu: per(2) };
}

export async function qd1(client: PeerLinkClient, seconds: number): Promise<{ p50: number; iops: number; calls: number }> {
  const data = Buffer.alloc(4096, 1);
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  let offset = 0;
  while (performance.now() < end) {
    const start = performance.now();
    await client.callUnchecked('pair.write', { pair: 'p', offset, ack: 'durable', fua: false }, data);
    times.push((performance.now() - start) * 1000);
    offset = (offset + 4096) % (256 << 20);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)], iops: times.length / seconds, calls: times.length };
}

