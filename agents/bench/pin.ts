/**
 * CPU pinning for `bench:mirror`: the secondary agent (beta) alone on the
 * last CPU, so its work stands for another host's; the bench process (fio,
 * the FaultProxy) and the primary agent (alpha) on the others. Linux with
 * `taskset` and at least two CPUs; otherwise nothing is pinned and the
 * report says so.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';

export interface Pinning {
  /** CPUs of beta and of everything else, as taskset lists; null: not pinned (with why). */
  beta: string | null;
  rest: string | null;
  note: string;
}

/** Pins every thread of `pid` (and what it starts later) to `cpus`; throws when taskset fails. */
function pin(pid: number, cpus: string): void {
  const result = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`taskset -a -p -c ${cpus} ${pid}: ${(result.stderr || result.error?.message || '').trim()}`);
}

/** Pins beta to the last CPU and this process and alpha to the rest (`enabled` false: nothing pinned). */
export function pinSites(enabled: boolean, alphaPid: number | null, betaPid: number | null): Pinning {
  const cpus = os.availableParallelism();
  if (!enabled) return { beta: null, rest: null, note: 'not pinned (--no-pin): the agents and fio share every CPU' };
  if (cpus < 2) return { beta: null, rest: null, note: `not pinned: ${cpus} CPU` };
  if (spawnSync('taskset', ['--version']).status !== 0) return { beta: null, rest: null, note: 'not pinned: taskset not found (util-linux)' };
  if (alphaPid === null || betaPid === null) throw new Error('pinning: an agent is not running');
  const beta = String(cpus - 1);
  const rest = cpus === 2 ? '0' : `0-${cpus - 2}`;
  pin(betaPid, beta);
  pin(process.pid, rest);
  pin(alphaPid, rest);
  return { beta, rest, note: `beta pinned to CPU ${beta} (it stands for another host); alpha, fio and the proxy on CPU ${rest}` };
}
