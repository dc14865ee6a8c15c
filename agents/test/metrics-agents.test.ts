import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionInfoSchema } from '@tandem/contract';
import { initTempDataDir, runCli, startAgentProcess, startPairedAgents, type AgentProcess } from './helpers/agent-process.ts';
import { getMetrics, promtoolCheck, samplesOf, scrape, until, valueOf, type MetricSample } from './helpers/metrics.ts';
import { runCommand } from './helpers/run-command.ts';

/**
 * Prometheus metrics of real agent processes (`run --metrics 127.0.0.1:0`):
 * two paired agents mirror a sync session; host writes through NBD with
 * qemu-io move the NBD counters by exactly what was written; the session,
 * copy set, peer, engine, pool and flash series read what the API reports;
 * promtool accepts the exposition; an address that cannot be bound stops
 * `run` with a problem code before anything starts.
 */

const MiB = 1024 * 1024;
const metricsArgs = ['--metrics', '127.0.0.1:0'];

let alpha: AgentProcess;
let beta: AgentProcess;

function metricsAddress(agent: AgentProcess): string {
  const address = agent.runInfo.metricsAddress;
  if (!address) throw new Error(`agent ${agent.dataDir} has no metrics address in run.json`);
  return address;
}

async function samples(agent: AgentProcess): Promise<MetricSample[]> {
  return (await scrape(metricsAddress(agent))).samples;
}

beforeAll(async () => {
  [alpha, beta] = await startPairedAgents([
    { site: 'alpha', extraArgs: metricsArgs },
    { site: 'beta', extraArgs: metricsArgs },
  ]);
  await alpha.api.createVolume('p-metrics', 16 * MiB);
  await beta.api.createVolume('c-metrics', 16 * MiB);
  await alpha.api.call('POST', '/v1/sessions', null, { name: 'metered', type: 'sync', peer: 'beta' });
  await alpha.api.call('POST', '/v1/sessions/metered/pairs', null, { h1Volume: 'p-metrics', h2Volume: 'c-metrics' });
  await alpha.api.call('POST', '/v1/sessions/metered/actions/start', null, {});
  await until('session metered prepared', async () => (await alpha.api.call('GET', '/v1/sessions/metered', SessionInfoSchema)).state === 'prepared');
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
});

describe('agent metrics', () => {
  it('count NBD writes by exactly the bytes written, and report the engine, the pool and the sync session at both sites', async () => {
    const address = metricsAddress(alpha);
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(alpha.stdout).toContain(`metrics      http://${address}/metrics`);

    // The volume's NBD series exist (zero) from its first connection on.
    const probe = await runCommand('qemu-io', ['-f', 'raw', '-c', 'read 0 64k', alpha.nbdUri('p-metrics')]);
    expect(probe.code, probe.out).toBe(0);
    const before = await samples(alpha);
    const volume = { volume: 'p-metrics' };
    const writtenBefore = valueOf(before, 'tandem_nbd_written_bytes_total', volume);
    expect(writtenBefore).toBe(0);
    const writesBefore = valueOf(before, 'tandem_nbd_requests_total', { ...volume, operation: 'write' })!;
    const flushesBefore = valueOf(before, 'tandem_nbd_requests_total', { ...volume, operation: 'flush' })!;
    const commitsBefore = valueOf(before, 'tandem_wal_commits_total')!;
    expect(valueOf(before, 'tandem_nbd_read_bytes_total', volume)).toBe(64 * 1024);

    // 1 MiB + 64 KiB + 4 KiB in three writes (one of them unaligned), then a flush.
    const written = MiB + 64 * 1024 + 4096;
    const write = await runCommand('qemu-io', [
      '-f', 'raw', '-t', 'none',
      '-c', 'write -P 0x5a 0 1M',
      '-c', 'write -P 0x6b 4M 64k',
      '-c', 'write -P 0x7c 8193 4096',
      '-c', 'flush',
      alpha.nbdUri('p-metrics'),
    ]);
    expect(write.code, write.out).toBe(0);

    const after = await samples(alpha);
    expect(valueOf(after, 'tandem_nbd_written_bytes_total', volume)! - writtenBefore!).toBe(written);
    expect(valueOf(after, 'tandem_nbd_requests_total', { ...volume, operation: 'write' })! - writesBefore).toBeGreaterThanOrEqual(3);
    expect(valueOf(after, 'tandem_nbd_requests_total', { ...volume, operation: 'flush' })! - flushesBefore).toBeGreaterThanOrEqual(1);
    expect(valueOf(after, 'tandem_nbd_request_errors_total', { ...volume, operation: 'write' }) ?? 0).toBe(0);
    // The latency histogram counts every answered write; its +Inf bucket equals its count.
    const writeCount = valueOf(after, 'tandem_nbd_request_duration_seconds_count', { ...volume, operation: 'write' })!;
    expect(writeCount).toBe(valueOf(after, 'tandem_nbd_requests_total', { ...volume, operation: 'write' }));
    expect(valueOf(after, 'tandem_nbd_request_duration_seconds_bucket', { ...volume, operation: 'write', le: '+Inf' })).toBe(writeCount);
    expect(valueOf(after, 'tandem_nbd_request_duration_seconds_sum', { ...volume, operation: 'write' })).toBeGreaterThan(0);

    // The flush made the WAL durable: commits and fdatasync times were counted.
    expect(valueOf(after, 'tandem_wal_commits_total')!).toBeGreaterThan(commitsBefore);
    expect(valueOf(after, 'tandem_fsync_duration_seconds_count', { file: 'wal' })!).toBeGreaterThan(0);
    const pool = await alpha.api.pool();
    expect(valueOf(after, 'tandem_pool_used_bytes')).toBe(pool.usedBytes);
    expect(valueOf(after, 'tandem_pool_capacity_bytes')).toBe(pool.extentCount * pool.trackSize);
    // 17 tracks of 64 KiB hold the writes (the unaligned 4 KiB lands in the first 1 MiB's tracks).
    expect(valueOf(after, 'tandem_pool_used_bytes')!).toBeGreaterThanOrEqual(MiB + 64 * 1024);

    // The sync session at its source: prepared, healthy, consistent as of about now, its copy set duplex.
    const session = { session: 'metered' };
    expect(valueOf(after, 'tandem_session_info', session)).toBe(1);
    expect(samplesOf(after, 'tandem_session_info', session)[0].labels).toMatchObject({ type: 'sync', role: 'h1', h1_site: 'alpha', h2_site: 'beta' });
    const states = samplesOf(after, 'tandem_session_state', session);
    expect(states.filter((sample) => sample.value === 1).map((sample) => sample.labels.state)).toEqual(['prepared']);
    expect(states.map((sample) => sample.labels.state).sort()).toEqual(
      ['defined', 'preparing', 'prepared', 'suspending', 'suspended', 'recovering', 'target-available'].sort(),
    );
    expect(valueOf(after, 'tandem_session_health', { ...session, health: 'normal' })).toBe(1);
    const consistency = valueOf(after, 'tandem_session_consistency_timestamp_seconds', session)!;
    expect(Math.abs(consistency - Date.now() / 1000)).toBeLessThan(120);
    expect(valueOf(after, 'tandem_session_exposure_seconds', session)!).toBeGreaterThanOrEqual(0);
    expect(valueOf(after, 'tandem_session_out_of_sync_bytes', session)).toBe(0);
    const copySet = { ...session, h1_volume: 'p-metrics', h2_volume: 'c-metrics' };
    expect(valueOf(after, 'tandem_copy_set_state', { ...copySet, state: 'duplex' })).toBe(1);
    expect(valueOf(after, 'tandem_copy_set_out_of_sync_bytes', copySet)).toBe(0);
    expect(valueOf(after, 'tandem_copy_set_resync_remaining_bytes', copySet)).toBe(0);

    // The peer link to beta: connected, with a round trip once the heartbeats measured one.
    expect(valueOf(after, 'tandem_peer_link_state', { peer: 'beta', state: 'connected' })).toBe(1);
    expect(valueOf(after, 'tandem_peer_link_state', { peer: 'beta', state: 'down' })).toBe(0);
    const roundTrip = await until('a round trip to beta', async () => {
      const value = valueOf(await samples(alpha), 'tandem_peer_round_trip_seconds', { peer: 'beta' });
      return value === undefined ? null : { value };
    });
    expect(roundTrip.value).toBeGreaterThanOrEqual(0);
    expect(roundTrip.value).toBeLessThan(10);

    // The same session at its target, as beta sees it.
    const atBeta = await samples(beta);
    expect(samplesOf(atBeta, 'tandem_session_info', session)[0]?.labels).toMatchObject({ role: 'h2' });
    expect(valueOf(atBeta, 'tandem_copy_set_state', { ...copySet, state: 'duplex' })).toBe(1);
    expect(valueOf(atBeta, 'tandem_peer_link_state', { peer: 'alpha', state: 'connected' })).toBe(1);
    // Beta's volume took the mirrored writes, not NBD writes: no NBD series for it.
    expect(samplesOf(atBeta, 'tandem_nbd_written_bytes_total', { volume: 'c-metrics' })).toEqual([]);

    const agentInfo = samplesOf(after, 'tandem_agent_info');
    expect(agentInfo).toHaveLength(1);
    expect(agentInfo[0].labels.site).toBe('alpha');
  });

  it('report a flash copy relationship\'s copied share until its background copy completes', async () => {
    await alpha.api.createVolume('f-source', 4 * MiB);
    await alpha.api.createVolume('f-target', 4 * MiB);
    const write = await runCommand('qemu-io', ['-f', 'raw', '-c', 'write -P 0x42 0 2M', alpha.nbdUri('f-source')]);
    expect(write.code, write.out).toBe(0);
    const established = await alpha.api.request('POST', '/v1/flash-sessions', {
      name: 'metered-flash',
      pairs: [{ source: 'f-source', target: 'f-target' }],
      rateMiBps: 1,
    });
    expect(established.status, JSON.stringify(established.body)).toBe(201);
    const labels = { session: 'metered-flash', source: 'f-source', target: 'f-target' };
    const first = valueOf(await samples(alpha), 'tandem_flash_copied_ratio', labels);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThanOrEqual(1);
    const unlimited = await alpha.api.request('PATCH', '/v1/flash-sessions/metered-flash', { rateMiBps: null });
    expect(unlimited.status, JSON.stringify(unlimited.body)).toBe(200);
    await until('the flash copy copied', async () => valueOf(await samples(alpha), 'tandem_flash_copied_ratio', labels) === 1);
    expect(valueOf(await samples(alpha), 'tandem_flash_copied_bytes', labels)).toBe(4 * MiB);
  });

  it('pass promtool check metrics, answer only GET and HEAD at /metrics', async () => {
    for (const agent of [alpha, beta]) {
      const { text } = await scrape(metricsAddress(agent));
      const check = await promtoolCheck(text);
      expect(check.out).toBe('');
      expect(check.code).toBe(0);
      // Every metric family is ours: tandem_ prefix, no global-registry leftovers.
      const names = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((match) => match[1]));
      expect([...names].filter((name) => !name.startsWith('tandem_'))).toEqual([]);
    }
    const answer = await getMetrics(metricsAddress(alpha));
    expect(answer.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await getMetrics(metricsAddress(alpha), '/')).status).toBe(404);
    expect((await getMetrics(metricsAddress(alpha), '/metrics', 'POST')).status).toBe(405);
    expect((await getMetrics(metricsAddress(alpha), '/metrics', 'HEAD')).status).toBe(200);
  });

  it('refuse a --metrics address that cannot be bound with a problem code, starting nothing; without --metrics there is no listener', async () => {
    const dataDir = await initTempDataDir({ site: 'gamma' });
    try {
      const taken = metricsAddress(alpha);
      const refused = await runCli([
        'run', '--data', dataDir, '--api', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--link', '127.0.0.1:0', '--metrics', taken,
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`error: conflict: cannot listen for metrics (--metrics) on ${taken}: EADDRINUSE`);
      expect(refused.stdout).not.toMatch(/^ready$/m);
      await expect(readFile(path.join(dataDir, 'run.json'))).rejects.toMatchObject({ code: 'ENOENT' });
      const malformed = await runCli(['run', '--data', dataDir, '--metrics', 'no-port']);
      expect(malformed.code).toBe(2);
      expect(malformed.stderr).toMatch(/error: bad-request: .*'no-port' is not HOST:PORT/);

      // Nothing was left half-started: the data dir's lock is free, and an agent starts on it (without metrics).
      const gamma = await startAgentProcess({ dataDir });
      try {
        expect(gamma.runInfo.metricsAddress ?? null).toBeNull();
        expect(gamma.stdout).not.toContain('metrics');
      } finally {
        await gamma.stop();
      }
    } finally {
      await rm(path.dirname(dataDir), { recursive: true, force: true });
    }
  });
});
