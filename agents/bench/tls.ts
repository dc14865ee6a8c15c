/**
 * The TLS leg of bench:nbd (issue 15): NBD over TLS with x509 client
 * certificates against qemu-nbd and nbdkit with TLS. The agent restarts with
 * --tls and an NBD client made by `nbd-client add`; qemu-nbd and nbdkit get
 * the agent's own server certificate and CA, so one client credential
 * directory serves all three (`nbds://…?tls-certificates=DIR`). fio's nbd
 * engine refuses URIs naming local files (libnbd's uri_allow_local_file),
 * so the client here is nbdcopy, timed per run (process start included):
 * the whole 1 GiB export read with 1 MiB requests, 16 in flight, and 512 MiB
 * of random data written the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { startNbdkit, startQemuNbd, type Endpoint } from './anchors.ts';
import type { FioJob, FioResult } from './fio.ts';
import { num } from './format.ts';
import { progress, rotate, type JobSamples } from './interleave.ts';
import { processCpuMs, run } from './procs.ts';
import type { Bench } from './setup.ts';
import { volumeName } from './setup.ts';

interface TlsJob extends FioJob {
  /** nbdcopy arguments for this endpoint URI (and the random source file for writes). */
  copy(uri: string, source: string): string[];
  bytes: number;
  requestBytes: number;
}

const MiB = 1024 * 1024;

export const tlsJobs: TlsJob[] = [
  {
    id: 'tls-seq1m-qd16-read', label: 'TLS seq 1M qd16 read', metric: 'MiB/s', direction: 'read', args: [], bytes: 1024 * MiB, requestBytes: MiB,
    copy: (uri) => ['--connections=1', '--requests=16', `--request-size=${MiB}`, uri, 'null:'],
  },
  {
    id: 'tls-seq1m-qd16', label: 'TLS seq 1M qd16 write', metric: 'MiB/s', args: [], bytes: 512 * MiB, requestBytes: MiB,
    copy: (uri, source) => ['--connections=1', '--requests=16', `--request-size=${MiB}`, source, uri],
  },
];

/** One timed nbdcopy run, as a FioResult (no latency percentiles). */
async function timedCopy(endpoint: Endpoint, job: TlsJob, source: string): Promise<FioResult> {
  const args = job.copy(endpoint.uri, source);
  const before = processCpuMs(endpoint.pid);
  const started = performance.now();
  const result = await run('nbdcopy', args, { timeoutMs: 600_000 });
  const ms = performance.now() - started;
  const after = processCpuMs(endpoint.pid);
  if (result.code !== 0) throw new Error(`nbdcopy ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
  const bytes = job.bytes;
  const ios = bytes / job.requestBytes;
  const out: FioResult = {
    mibps: bytes / MiB / (ms / 1000),
    iops: ios / (ms / 1000),
    clatP50us: (ms * 1000) / ios,
    clatP99us: 0,
    syncP50us: null,
    p50us: job.metric === 'IOPS' ? (ms * 1000) / ios : 0,
    totalIos: ios,
    runtimeMs: ms,
  };
  if (before !== null && after !== null) out.serverCpuUs = ((after - before) * 1000) / (job.metric === 'MiB/s' ? bytes / MiB : ios);
  return out;
}

const withTls = (uri: string, clientDir: string): string => `${uri.replace(/^nbd:/, 'nbds:')}?tls-certificates=${clientDir}`;

export async function tlsSection(bench: Bench, reps: number, runtime: number, names: string[]): Promise<JobSamples[]> {
  const dir = path.join(bench.dir, 'tls');
  const serverDir = path.join(dir, 'server');
  const clientDir = path.join(dir, 'client');
  fs.mkdirSync(serverDir, { recursive: true });
  const endpoints: Endpoint[] = [];
  const started: Endpoint[] = [];
  try {
    if (bench.tandem && names.includes('tandem')) {
      progress('tandem: restart with --tls, nbd-client add bench');
      await bench.tandem.stop();
      await bench.tandem.start(60_000, ['--tls']);
      await bench.tandem.cli(['nbd-client', 'add', 'bench', '--exports', '*', '--out', clientDir]);
      const plain = bench.tandem.endpoint(volumeName);
      endpoints.push({ ...plain, uri: withTls(plain.uri, clientDir) });
      const agentTls = path.join(bench.tandem.dataDir, 'tls');
      fs.copyFileSync(path.join(agentTls, 'ca.pem'), path.join(serverDir, 'ca-cert.pem'));
      fs.copyFileSync(path.join(agentTls, 'server.pem'), path.join(serverDir, 'server-cert.pem'));
      fs.copyFileSync(path.join(agentTls, 'server-key.pem'), path.join(serverDir, 'server-key.pem'));
    } else {
      progress('TLS leg skipped: it uses the Tandem agent\'s CA for every server');
      return [];
    }
    if (names.includes('qemu-nbd')) {
      const q = await startQemuNbd(bench.rawFile, bench.logDir, volumeName, 'raw', 'qemu-nbd', serverDir);
      started.push(q);
      endpoints.push({ ...q, name: 'qemu-nbd', uri: withTls(q.uri, clientDir) });
    }
    if (names.includes('nbdkit')) {
      const n = await startNbdkit(bench.rawFile, bench.logDir, volumeName, 'nbdkit', serverDir);
      started.push(n);
      endpoints.push({ ...n, name: 'nbdkit', uri: withTls(n.uri, clientDir) });
    }
    const source = path.join(dir, 'source.raw');
    const fd = fs.openSync(source, 'w');
    for (let i = 0; i < 512; i++) fs.writeSync(fd, crypto.randomBytes(MiB));
    fs.closeSync(fd);
    const results: JobSamples[] = tlsJobs.map((job) => ({ job, samples: Object.fromEntries(endpoints.map((e) => [e.name, [] as FioResult[]])) }));
    for (let rep = 0; rep < reps; rep++) {
      for (let j = 0; j < tlsJobs.length; j++) {
        const job = tlsJobs[j];
        for (const endpoint of rotate(endpoints, rep + j)) {
          const result = await timedCopy(endpoint, job, source);
          results[j].samples[endpoint.name].push(result);
          progress(`[tls ${rep + 1}/${reps}] ${job.label.padEnd(22)} ${endpoint.name.padEnd(8)} ${num(job.metric === 'MiB/s' ? result.mibps : result.iops).padStart(7)} ${job.metric}, server CPU ${num(result.serverCpuUs)} µs/${job.metric === 'MiB/s' ? 'MiB' : 'IO'}`);
        }
      }
    }
    void runtime;
    return results;
  } finally {
    for (const endpoint of started) await endpoint.stop().catch(() => {});
  }
}
