/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and sums its samples inside a
 * time window, per function: where an agent spent its time while one fio
 * run went on, divided by that run's I/Os. V8 stamps samples with the
 * monotonic clock, the same one as `process.hrtime` in the bench process,
 * so the window is the bench's own start and end of the fio run.
 *
 * The profiler samples the JS thread's wall time: a sample inside a system
 * call counts the call, and time the thread waited for the CPU counts where
 * it was taken off. Read it as "where the thread was", next to the CPU
 * time /proc gives.
 */
import fs from 'node:fs';
import { table } from './format.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FrameCost {
  frame: string;
  /** µs per I/O. */
  perIo: number;
}

export interface WindowCosts {
  /** µs sampled in the window, and of those the thread was not idle. */
  sampledUs: number;
  busyUs: number;
  self: FrameCost[];
  inclusive: FrameCost[];
}

function frameName(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  const file = url.split('/').slice(-2).join('/');
  return `${functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
}

/** Self and inclusive time per function of the samples in [fromUs, toUs] (monotonic µs), per I/O. */
export function windowCosts(file: string, fromUs: number, toUs: number, ios: number, top: number): WindowCosts {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const timeOf = new Map<number, number>();
  let at = profile.startTime;
  let sampledUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    // A sample's weight is the time until the next one.
    const weight = profile.timeDeltas[i + 1] ?? 0;
    if (at < fromUs || at > toUs) continue;
    timeOf.set(profile.samples[i], (timeOf.get(profile.samples[i]) ?? 0) + weight);
    sampledUs += weight;
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of timeOf) {
    const name = frameName(byId.get(id)!);
    self.set(name, (self.get(name) ?? 0) + us);
    const seen = new Set<string>();
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const frame = frameName(byId.get(cursor)!);
      if (seen.has(frame)) continue; // recursion counts once
      seen.add(frame);
      inclusive.set(frame, (inclusive.get(frame) ?? 0) + us);
    }
  }
  const idle = self.get('(idle)') ?? 0;
  const ranked = (map: Map<string, number>) =>
    [...map]
      .filter(([frame]) => frame !== '(root)' && frame !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, us]) => ({ frame, perIo: us / Math.max(ios, 1) }));
  return { sampledUs, busyUs: sampledUs - idle, self: ranked(self), inclusive: ranked(inclusive) };
}

/** The profile a process wrote into `dir` for its main thread (`CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile`). */
export function mainThreadProfile(dir: string, pid: number): string | null {
  const name = fs.readdirSync(dir).find((file) => file.endsWith('.cpuprofile') && file.split('.')[3] === String(pid) && file.split('.')[4] === '0');
  return name ? `${dir}/${name}` : null;
}

/** Self and inclusive costs side by side, µs per I/O. */
export function cpuProfileTable(costs: WindowCosts): string {
  const rows: string[][] = [];
  for (let i = 0; i < Math.max(costs.self.length, costs.inclusive.length); i++) {
    const self = costs.self[i];
    const inclusive = costs.inclusive[i];
    rows.push([self ? self.perIo.toFixed(2) : '', self?.frame ?? '', inclusive ? inclusive.perIo.toFixed(2) : '', inclusive?.frame ?? '']);
  }
  return table(['self µs/IO', 'function', 'inclusive µs/IO', 'function'], rows);
}
