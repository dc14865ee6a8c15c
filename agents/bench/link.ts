/**
 * `npm run bench:link`: the peer link alone (mutual TLS, framing, checksums,
 * RpcConnection), between two processes like two agents: a server process
 * whose handler answers `pair.write`-shaped requests at once (no disk), and
 * this process as the client. Measured directly and through the FaultProxy
 * (in a process of its own, like bench:mirror's): 4K calls at qd1 (round
 * trip p50) and 1M calls at qd16 (MiB/s) — the "link" of
 * min(local disk, link) in BENCHMARKS.md. Interleaved reps, medians.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PeerLinkClient } from '../src/replication/link/peer-link.ts';
import { child, credentials, logger, qd1, startChild, withCpu } from './link-peer.ts';
import { eachArg, positiveInt, UsageError } from './args.ts';
import { median, num, table } from './format.ts';
import { progress } from './interleave.ts';
import { loadAverage, loadLine, parseOrExit, runBench } from './run.ts';

const usage = `usage: npm run bench:link -- [--runtime S] [--reps N]
  --runtime S   seconds per measurement (default 3)
  --reps N      interleaved repetitions (default 3)`;

interface Options {
  runtime: number;
  reps: number;
}

function parse(argv: string[]): Options {
  const options: Options = { runtime: 3, reps: 3 };
  eachArg(argv, (arg, value) => {
    switch (arg) {
      case '--runtime': options.runtime = positiveInt(arg, value()); break;
      case '--reps': options.reps = positiveInt(arg, value()); break;
      case '-h': case '--help': throw new UsageError('');
      default: throw new UsageError(`unknown option ${arg}`);
    }
  });
  return options;
}

async function qd16(client: PeerLinkClient, seconds: number): Promise<{ mibps: number; calls: number }> {
  const data = Buffer.alloc(1 << 20, 1);
  let bytes = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const worker = async (k: number) => {
    let offset = k << 20;
    while (performance.now() < end) {
      await client.callUnchecked('pair.write', { pair: 'p', offset, ack: 'durable', fua: false }, data);
      bytes += data.length;
      offset = (offset + (16 << 20)) % (256 << 20);
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, k) => worker(k)));
  return { mibps: bytes / (1 << 20) / ((performance.now() - started) / 1000), calls: bytes / data.length };
}

async function main(): Promise<void> {
  const role = process.argv.find((arg) => arg.startsWith('--child-'));
  if (role) return child(role.slice('--child-'.length));
  const opts = parseOrExit(parse, usage);
  const loadBefore = loadAverage();
  const setup = await credentials();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-link-'));
  const file = path.join(dir, 'setup.json');
  fs.writeFileSync(file, JSON.stringify({ serverCredentials: setup.serverCredentials, clientRecord: setup.clientRecord }));
  const server = await startChild('serve', file);
  fs.writeFileSync(file, JSON.stringify({ serverCredentials: setup.serverCredentials, clientRecord: setup.clientRecord, target: `127.0.0.1:${server.port}` }));
  const proxy = await startChild('proxy', file);
  fs.rmSync(dir, { recursive: true, force: true });
  const paths = { direct: `127.0.0.1:${server.port}`, proxy: `127.0.0.1:${proxy.port}` } as const;
  const clients = Object.fromEntries(
    Object.entries(paths).map(([name, address]) => [name, new PeerLinkClient(setup.serverRecord(address), setup.clientCredentials, logger)]),
  ) as Record<keyof typeof paths, PeerLinkClient>;
  type Samples = Record<'p50' | 'iops' | 'mibps' | 'cpu4k' | 'srv4k' | 'cpu1m' | 'srv1m' | 'proxy1m', number[]>;
  const results: Record<string, Samples> = {};
  for (const name of Object.keys(paths)) {
    await clients[name as keyof typeof paths].callUnchecked('pair.write', {}, Buffer.alloc(1), { waitForLinkMs: 10_000 });
    results[name] = { p50: [], iops: [], mibps: [], cpu4k: [], srv4k: [], cpu1m: [], srv1m: [], proxy1m: [] };
  }
  for (let rep = 0; rep < opts.reps; rep++) {
    const order = rep % 2 === 0 ? (['direct', 'proxy'] as const) : (['proxy', 'direct'] as const);
    for (const name of order) {
      const small = await withCpu([server, proxy], () => qd1(clients[name], opts.runtime));
      const big = await withCpu([server, proxy], () => qd16(clients[name], opts.runtime));
      const r = results[name];
      r.p50.push(small.p50);
      r.iops.push(small.iops);
      r.mibps.push(big.mibps);
      r.cpu4k.push(small.clientCpu);
      r.srv4k.push(small.serverCpu);
      r.cpu1m.push(big.clientCpu);
      r.srv1m.push(big.serverCpu);
      r.proxy1m.push(big.proxyCpu);
      progress(
        `[rep ${rep + 1}/${opts.reps}] ${name.padEnd(6)} 4K qd1 p50 ${num(small.p50)} µs, ${num(small.iops)} calls/s, CPU µs/call ${num(small.clientCpu)} + ${num(small.serverCpu)}; ` +
          `1M qd16 ${num(big.mibps)} MiB/s, CPU µs/MiB ${num(big.clientCpu)} + ${num(big.serverCpu)} (proxy ${num(big.proxyCpu)})`,
      );
    }
  }
  for (const client of Object.values(clients)) client.close();
  server.kill();
  proxy.kill();
  const m = (values: number[]) => num(median(values));
  console.log(
    [
      '',
      `## Peer link alone (mutual TLS, no disk at the far end), median of ${opts.reps} interleaved reps, ${opts.runtime} s each`,
      'CPU = process CPU time per call, client + server (the proxy process apart): steadier than wall-clock figures on a shared machine.',
      table(
        ['path', '4K qd1 round trip p50 µs', '4K qd1 calls/s', '4K CPU µs/call', '1M qd16 MiB/s', '1M CPU µs/MiB', 'proxy CPU µs/MiB'],
        Object.entries(results).map(([name, r]) => [
          name,
          m(r.p50),
          m(r.iops),
          `${m(r.cpu4k)} + ${m(r.srv4k)}`,
          m(r.mibps),
          `${m(r.cpu1m)} + ${m(r.srv1m)}`,
          name === 'proxy' ? m(r.proxy1m) : '—',
        ]),
      ),
      '',
      loadLine(loadBefore, loadAverage()),
    ].join('\n'),
  );
}

runBench('link', main);
