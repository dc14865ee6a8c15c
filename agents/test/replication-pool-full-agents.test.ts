import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PairBitmapSchema, PoolStatsSchema } from '@tandem/contract';
import { initTempDataDir, pairAgents, startAgentProcess, type AgentProcess } from './helpers/agent-process.ts';
import { runCommand } from './helpers/run-command.ts';
import { preparedSession, qemuIo, sameBytes, showSession, showSessionText, staysPut, until, untilSession } from './helpers/session-views.ts';

/**
 * The target's pool full while mirroring, with real agent processes: beta's
 * pool directory is a small file system of its own (a tmpfs mounted on
 * DATA/pool: the file system holding the pool runs full, as a real one
 * does; mounting needs root, so the file is skipped without it). A sync
 * session alpha -> beta; a filler volume at beta takes most of the room;
 * host writes at alpha then do not fit at beta. Within 10 s the session is
 * suspended and says so at the API and the CLI (the pool of beta is full,
 * how full, what to do), every host write completes at alpha and its tracks
 * stay marked (nothing lost), and the session waits for the administrator
 * rather than failing again and again. Room made at beta (the filler
 * deleted: its extents are used again) and the session resumed, it is
 * Prepared and both copies hold the same bytes. The same for an async
 * session (a consistency group that does not fit), recovered by growing the
 * file system (tmpfs remounted larger).
 */

const SAID_WITHIN_MS = 10_000;
const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
let alpha: AgentProcess;
let beta: AgentProcess;
let betaDir: string;
let mounted = false;

beforeAll(async () => {
  if (!isRoot) return;
  betaDir = await initTempDataDir({ site: 'beta' });
  const pool = path.join(betaDir, 'pool');
  const mount = await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tandem-test-pool', pool]);
  if (mount.code !== 0) throw new Error(`mounting a tmpfs on beta's pool failed: ${mount.out}`);
  mounted = true;
  [alpha, beta] = await Promise.all([startAgentProcess({ site: 'alpha' }), startAgentProcess({ dataDir: betaDir })]);
  await pairAgents(alpha, beta);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([alpha?.stop(), beta?.stop()]);
  if (mounted) await runCommand('umount', [path.join(betaDir, 'pool')]);
  if (betaDir) await rm(path.dirname(betaDir), { recursive: true, force: true });
});

describe.skipIf(!isRoot)("the target's pool full while mirroring", () => {
  it('said within 10 s at the API and the CLI (suspended, the pool of beta named, how full, what to do); host writes complete and stay marked', async () => {
    await preparedSession(alpha, beta, 'pf', 'sync', 'p-pf', 'c-pf', 32);
    await beta.api.call('POST', '/v1/volumes', null, { name: 'filler', sizeBytes: 16 * MiB });
    await qemuIo(beta.nbdUri('filler'), 'write -P 0x11 0 4M');

    const writtenAt = Date.now();
    // 4 MiB at alpha: about 2 MiB is left at beta. The host's write completes at alpha all the same.
    await qemuIo(alpha.nbdUri('p-pf'), 'write -P 0x21 0 4M');
    const suspended = await untilSession(alpha, 'pf', 'alpha suspends', (view) => view.state === 'suspended', 20_000);
    expect(Date.now() - writtenAt, 'said within 10 s of the write').toBeLessThan(SAID_WITHIN_MS);
    expect(suspended.health).toBe('severe');
    expect(suspended.detail).toMatch(
      /no-space: the pool of beta is full \(the pool file system is full\): [\d.]+ MiB in use by 2 volume\(s\) and 0 snapshot\(s\), [\d.]+ MiB free on the file system holding it/,
    );
    expect(suspended.detail).toMatch(/nothing is lost.*make room at beta \(delete volumes or snapshots there, or grow the file system holding its pool\), then resume \(tandem-agent session resume pf\)/);
    expect(suspended.pairs[0]).toMatchObject({ state: 'suspended', reason: expect.stringMatching(/^no-space: the pool of beta is full/) });
    expect(suspended.pairs[0].outOfSyncTracks).toBeGreaterThan(0);
    // Suspended from Prepared: beta holds the image of the moment mirroring stopped (the failed write was never acknowledged).
    expect(suspended.recoverable).toBe(true);
    expect(Date.parse(suspended.consistencyTime ?? '')).toBeGreaterThanOrEqual(writtenAt - 1000);
    expect(suspended.exposureSeconds).not.toBeNull();
    const text = await showSessionText(alpha, 'pf');
    expect(text).toMatch(/state\s+suspended, health severe/);
    expect(text).toMatch(/detail\s+.*the pool of beta is full/);
    // Beta says the same state, learned from alpha; its pool has (almost) nothing left.
    const atBeta = await untilSession(beta, 'pf', 'beta knows', (view) => view.state === 'suspended');
    expect(atBeta.stateFrom.site).toBe('alpha');
    const pool = PoolStatsSchema.parse(JSON.parse((await beta.cli(['pool', 'show', '--json'])).stdout));
    expect(pool.filesystemFreeBytes).toBeLessThan(MiB);

    // More host writes while suspended: completed and marked; the session does not retry (and fail) by itself.
    await qemuIo(alpha.nbdUri('p-pf'), 'write -P 0x22 8M 1M');
    const bitmap = PairBitmapSchema.parse(JSON.parse((await alpha.cli(['session', 'bitmap', 'pf', 'p-pf', '--json'])).stdout));
    expect(bitmap.runs).toContainEqual([128, 16]);
    expect(bitmap.markedTracks).toBeGreaterThanOrEqual(16 + 1);
    await staysPut(alpha, 'pf', 3000);
    await qemuIo(alpha.nbdUri('p-pf'), 'read -P 0x21 0 4M');
  }, 180_000);

  it('room made at beta (a volume deleted) and resumed: Prepared, nothing marked, the same bytes on both sides', async () => {
    const deleted = await beta.cli(['volume', 'delete', 'filler']);
    expect(deleted.code, deleted.stderr).toBe(0);
    const resumed = await alpha.cli(['session', 'resume', 'pf']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const prepared = await untilSession(alpha, 'pf', 'prepared again', (view) => view.state === 'prepared' && view.pairs[0].outOfSyncTracks === 0, 90_000);
    expect(prepared.health).toBe('normal');
    expect(prepared.detail).toBeNull();
    await untilSession(beta, 'pf', 'prepared at beta', (view) => view.state === 'prepared' && view.health === 'normal');
    expect(await showSessionText(alpha, 'pf')).toMatch(/state\s+prepared, health normal/);
    await qemuIo(beta.nbdUri('c-pf'), 'read -P 0x21 0 4M');
    await qemuIo(beta.nbdUri('c-pf'), 'read -P 0x22 8M 1M');
    await sameBytes(alpha.nbdUri('p-pf'), beta.nbdUri('c-pf'));
    // And it keeps mirroring.
    await qemuIo(alpha.nbdUri('p-pf'), 'write -P 0x23 16M 512K');
    await qemuIo(beta.nbdUri('c-pf'), 'read -P 0x23 16M 512K');
    expect((await showSession(alpha, 'pf')).state).toBe('prepared');
  }, 180_000);

  it('async: a consistency group that does not fit suspends the session the same way; the file system grown and resumed, the copies are equal', async () => {
    const pool = path.join(betaDir, 'pool');
    // What beta's pool holds now plus 1 MiB: the next 4 MiB do not fit.
    const used = Number((await runCommand('du', ['-s', '-B1', pool])).out.split(/\s/)[0]);
    const remount = async (bytes: number) => expect((await runCommand('mount', ['-o', `remount,size=${bytes}`, pool])).code).toBe(0);
    await remount(used + MiB);
    await preparedSession(alpha, beta, 'pa', 'async', 'p-pa', 'c-pa', 32);
    const writtenAt = Date.now();
    await qemuIo(alpha.nbdUri('p-pa'), 'write -P 0x31 0 4M');
    const suspended = await untilSession(alpha, 'pa', 'alpha suspends', (view) => view.state === 'suspended', 20_000);
    expect(Date.now() - writtenAt, 'said within 10 s of the write').toBeLessThan(SAID_WITHIN_MS);
    expect(suspended.health).toBe('severe');
    expect(suspended.detail).toMatch(/no-space: the pool of beta is full .*make room at beta/);
    expect(suspended.pairs[0].outOfSyncTracks).toBeGreaterThanOrEqual(64);
    expect(await showSessionText(alpha, 'pa')).toMatch(/state\s+suspended, health severe/);
    await qemuIo(alpha.nbdUri('p-pa'), 'read -P 0x31 0 4M');

    // "Grow the file system holding its pool", then resume.
    await remount(used + 16 * MiB);
    expect((await alpha.cli(['session', 'resume', 'pa'])).code).toBe(0);
    await untilSession(alpha, 'pa', 'prepared again', (view) => view.state === 'prepared' && view.health === 'normal' && view.pairs[0].outOfSyncTracks === 0, 90_000);
    await qemuIo(alpha.nbdUri('p-pa'), 'write -P 0x32 8M 256K');
    await until('the write applied at beta', async () => {
      const result = await runCommand('qemu-io', ['-f', 'raw', '-c', 'read -P 0x32 8M 256K', beta.nbdUri('c-pa')]);
      return result.code === 0 && !/Pattern verification failed/.test(result.out);
    });
    await sameBytes(alpha.nbdUri('p-pa'), beta.nbdUri('c-pa'));
  }, 240_000);
});
