/** Targets from ../shared/BENCHMARKS.md ("Targets (ratios, measured side by side)"). */

export interface RatioTarget {
  /** The anchor the tandem figure is divided by. */
  against: 'qemu-nbd' | 'nbdkit';
  min: number;
}

/** NBD export, no replication: seq ≥ 1.0× qemu-nbd; 4K qd32 ≥ 1.0× qemu-nbd; 4K qd1 ≥ 0.8× nbdkit. */
export const exportTargets: Record<string, RatioTarget | undefined> = {
  'seq1m-qd1': { against: 'qemu-nbd', min: 1.0 },
  'seq1m-qd16': { against: 'qemu-nbd', min: 1.0 },
  'rand4k-qd1': { against: 'nbdkit', min: 0.8 },
  'rand4k-qd32': { against: 'qemu-nbd', min: 1.0 },
};

/** Snapshot establish: flat in volume size, ≤ 20 ms at 1 GiB and at 1 TiB (sparse). */
export const snapshotCreateMaxMs = 20;
/** First write after a snapshot: ≥ 0.5× plain write IOPS (qcow2: 0.39×). */
export const firstWriteMinRatio = 0.5;

export function describe(target: RatioTarget | undefined): string {
  return target ? `≥ ${target.min.toFixed(1)}× ${target.against}` : '—';
}

export function verdict(pass: boolean | null): string {
  return pass === null ? '—' : pass ? 'PASS' : 'MISS';
}
