/**
 * `bench:mirror`: the measured round trip of the peer link, for the sync
 * target's bound. The link of bench:link (mutual TLS, framing, checksums,
 * `RpcConnection`; a server child answering `pair.write`-shaped 4K requests
 * at once, no disk), between processes as alpha and beta are: directly, and
 * through a FaultProxy child delaying client -> server traffic by each added
 * RTT as bench:mirror's proxy does. 4K qd1 round trip p50, interleaved reps,
 * medians.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PeerLinkClient } from '../src/replication/link/peer-link.ts';
import { median, num } from './format.ts';
import { progress } from './interleave.ts';
import { credentials, logger, qd1, startChild } from './link-peer.ts';

export interface LinkRtts {
  /** 4K qd1 round-trip p50 per rep, µs, without the proxy. */
  direct: number[];
  /** The same through the proxy, per added RTT (ms, as a string key for JSON). */
  proxy: Record<string, number[]>;
}

/** Median measured round trip, µs: direct, or through the proxy at `rtt` ms added. */
export function linkRtt(rtts: LinkRtts | null, rtt: number, direct: boolean): number {
  if (!rtts) return Number.NaN;
  return median(direct ? rtts.direct : (rtts.proxy[String(rtt)] ?? []));
}

export async function measureLinkRtts(rtts: number[], reps: number, seconds: number): Promise<LinkRtts> {
  const setup = await credentials();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-mirror-link-'));
  const file = path.join(dir, 'setup.json');
  fs.writeFileSync(file, JSON.stringify({ serverCredentials: setup.serverCredentials, clientRecord: setup.clientRecord }));
  const server = await startChild('serve', file);
  fs.writeFileSync(file, JSON.stringify({ serverCredentials: setup.serverCredentials, clientRecord: setup.clientRecord, target: `127.0.0.1:${server.port}` }));
  const proxy = await startChild('proxy', file);
  fs.rmSync(dir, { recursive: true, force: true });
  const direct = new PeerLinkClient(setup.serverRecord(`127.0.0.1:${server.port}`), setup.clientCredentials, logger);
  const proxied = new PeerLinkClient(setup.serverRecord(`127.0.0.1:${proxy.port}`), setup.clientCredentials, logger);
  const result: LinkRtts = { direct: [], proxy: Object.fromEntries(rtts.map((rtt) => [String(rtt), []])) };
  try {
    for (const client of [direct, proxied]) await client.callUnchecked('pair.write', {}, Buffer.alloc(1), { waitForLinkMs: 10_000 });
    for (let rep = 0; rep < reps; rep++) {
      result.direct.push((await qd1(direct, seconds)).p50);
      for (const rtt of rep % 2 ? [...rtts].reverse() : rtts) {
        await proxy.setLatency(rtt);
        // One call first so no chunk of the last delay is still queued.
        await proxied.callUnchecked('pair.write', {}, Buffer.alloc(1));
        result.proxy[String(rtt)].push((await qd1(proxied, seconds)).p50);
      }
      progress(
        `[link rep ${rep + 1}/${reps}] 4K round trip p50 direct ${num(result.direct.at(-1))} µs; through the proxy ` +
          rtts.map((rtt) => `+${rtt} ms: ${num(result.proxy[String(rtt)].at(-1))} µs`).join(', '),
      );
    }
  } finally {
    direct.close();
    proxied.close();
    server.kill();
    proxy.kill();
  }
  return result;
}
