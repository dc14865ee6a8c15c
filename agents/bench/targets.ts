/** Targets from ../shared/BENCHMARKS.md ("Targets (ratios, measured side by side)") and issue 15. */

export interface RatioTarget {
  /** The anchor the tandem figure is divided by. */
  against: 'qemu-nbd' | 'nbdkit';
  min: number;
}

/** A job passes when tandem meets every one of its ratio targets. */
export type JobTargets = RatioTarget[];

const seq: JobTargets = [
  { against: 'qemu-nbd', min: 1.0 },
  { against: 'nbdkit', min: 0.8 },
];
const qd1: JobTargets = [{ against: 'nbdkit', min: 0.8 }];
const qd32: JobTargets = [{ against: 'nbdkit', min: 1.0 }];

/**
 * NBD export, no replication (issue 15, for reads and writes): seq 1M qd1/qd16
 * ≥ 1.0× qemu-nbd and ≥ 0.8× nbdkit; 4K qd1 ≥ 0.8× nbdkit; 4K qd32 ≥ 1.0× nbdkit.
 */
export const exportTargets: Record<string, JobTargets | undefined> = {
  'seq1m-qd1': seq,
  'seq1m-qd16': seq,
  'rand4k-qd1': qd1,
  'rand4k-qd32': qd32,
  'seq1m-qd1-read': seq,
  'seq1m-qd16-read': seq,
  'rand4k-qd1-read': qd1,
  'rand4k-qd32-read': qd32,
};

/** Snapshot establish: flat in volume size, ≤ 20 ms at 1 GiB and at 1 TiB (sparse). */
export const snapshotCreateMaxMs = 20;
/** First write after a snapshot / into a flash source: ≥ 0.6× plain write IOPS (BENCHMARKS.md; qcow2: 0.37–0.52×). */
export const firstWriteMinRatio = 0.6;

export function describe(targets: JobTargets | undefined): string {
  return targets && targets.length ? targets.map((t) => `≥ ${t.min.toFixed(1)}× ${t.against}`).join(', ') : '—';
}

/** Whether every target is met; null when there is none or an anchor is missing. */
export function judge(targets: JobTargets | undefined, ratios: Record<string, number | null>): boolean | null {
  if (!targets || targets.length === 0) return null;
  let pass = true;
  for (const target of targets) {
    const achieved = ratios[target.against];
    if (achieved === null || achieved === undefined) return null;
    if (achieved < target.min) pass = false;
  }
  return pass;
}

export function verdict(pass: boolean | null): string {
  return pass === null ? '—' : pass ? 'PASS' : 'MISS';
}
