import { ProblemError } from '@tandem/contract';
import type { HostChange, TrackSpan, WriteTap } from '../replication/splitter.ts';

/** A write-inhibited flash target: hosts may read it, not write it, while the relationship exists. */
export class FlashWriteInhibitTap implements WriteTap {
  readonly order = 10;

  constructor(
    private readonly volume: string,
    private readonly session: string,
  ) {}

  admit(_change: HostChange, _span: TrackSpan): void {
    throw new ProblemError('read-only', `${this.volume} is a write-inhibited target of flash session ${this.session}`);
  }

  beforeWrite(): void {}
}

export function withDeadline<T>(promise: Promise<T>, deadline: number, session: string, kind: string): Promise<T> {
  const left = deadline - Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ProblemError('timeout', `flash session ${session}: the mirror did not get ready for the ${kind} before the hold timeout`)),
      Math.max(0, left),
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function percentOf(part: number, total: number): number {
  return total === 0 ? 100 : Math.floor((part / total) * 10000) / 100;
}
