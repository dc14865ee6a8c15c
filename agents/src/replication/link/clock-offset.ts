/** One measurement of the other agent's clock (ms): its clock minus ours, the round trip it came from, and when (our clock). */
export interface ClockEstimate {
  offsetMs: number;
  rttMs: number;
  measuredAt: number;
}

/**
 * Another agent's clock this far off this one's (ms) is a warning: the
 * session's health says it (naming the site and the offset) and the event
 * `link.clock-skew` is recorded once per link. Measurements whose round trip
 * is longer than the threshold say too little to warn on. Tests set it with
 * `TANDEM_CLOCK_SKEW_WARNING_MS`.
 */
export const CLOCK_SKEW_WARNING_MS = Number(process.env.TANDEM_CLOCK_SKEW_WARNING_MS) || 2000;

/** The estimate is far enough off, and measured well enough, to warn about. */
export function skewWorthWarning(estimate: ClockEstimate | { offsetMs: number; rttMs: number } | null | undefined): boolean {
  return !!estimate && Math.abs(estimate.offsetMs) >= CLOCK_SKEW_WARNING_MS && estimate.rttMs <= CLOCK_SKEW_WARNING_MS;
}

/**
 * Clocks this close (beyond the measurement's own uncertainty, half its
 * round trip) count as the same clock: a time another site stamped is then
 * read exactly as stamped. A cut time names an exact image (every write
 * acknowledged before it, none after), and shifting it by an estimate that is
 * itself only good to half a round trip would make it name another one; NTP
 * keeps hosts within a few ms of each other, far below this.
 */
export const CLOCK_ALIGNED_MS = 50;

/** The other clock differs from ours by more than the estimate can be wrong by, plus CLOCK_ALIGNED_MS. */
export function skewToCorrect(estimate: { offsetMs: number; rttMs: number } | null | undefined): boolean {
  return !!estimate && Math.abs(estimate.offsetMs) > estimate.rttMs / 2 + CLOCK_ALIGNED_MS;
}

/** `the clock of beta is 120.0 s ahead of this agent's (±1 ms)`: how the warnings say it. */
export function describeSkew(site: string, estimate: { offsetMs: number; rttMs: number }): string {
  const seconds = Math.abs(estimate.offsetMs / 1000).toFixed(1);
  return `the clock of ${site} is ${seconds} s ${estimate.offsetMs > 0 ? 'ahead of' : 'behind'} this agent's (measured over the peer link, ±${Math.ceil(estimate.rttMs / 2)} ms)`;
}

/** Heartbeat samples kept; the estimate is the one with the shortest round trip among them. */
const SAMPLES = 16;

/**
 * The other agent's clock as seen over one peer link. Every heartbeat the
 * dialling side sends carries its clock (`t`); the reply carries it back
 * with the other side's clock when it answered (`s`). With `t2` our clock on
 * arrival, the other clock read `s` at about (t + t2) / 2 of ours, so
 * offset = s - (t + t2) / 2, wrong by at most half the round trip t2 - t
 * (NTP's argument). The estimate is the sample with the shortest round trip
 * of the last few: a reply held up behind mirrored data says little.
 */
export class ClockOffset {
  private samples: ClockEstimate[] = [];
  /** Told after every sample, with the estimate then. */
  onEstimate: ((estimate: ClockEstimate) => void) | null = null;

  /** A new connection: the other agent may have restarted (its clock set right meanwhile), so its first sample replaces the old ones. */
  private stale = false;

  /** The link connected again: the estimate so far stands until the new connection's first sample. */
  reconnected(): void {
    this.stale = this.samples.length > 0;
  }

  /** A heartbeat we sent at `sentAt` was answered with the other clock at `peerTime`, arriving at `receivedAt` (ms, ours, theirs, ours). */
  add(sentAt: number, peerTime: number, receivedAt: number): void {
    if (![sentAt, peerTime, receivedAt].every(Number.isFinite) || receivedAt < sentAt) return;
    if (this.stale) {
      this.samples = [];
      this.stale = false;
    }
    this.samples.push({ offsetMs: peerTime - (sentAt + receivedAt) / 2, rttMs: receivedAt - sentAt, measuredAt: receivedAt });
    if (this.samples.length > SAMPLES) this.samples.shift();
    this.onEstimate?.(this.estimate!);
  }

  /** The best estimate so far (null before the first answered heartbeat). */
  get estimate(): ClockEstimate | null {
    let best: ClockEstimate | null = null;
    for (const sample of this.samples) if (!best || sample.rttMs < best.rttMs) best = sample;
    return best ? { ...best, measuredAt: this.samples.at(-1)!.measuredAt } : null;
  }
}

/** An estimate as the API reports it (`ClockSkewSchema`): whole ms, the measurement time as ISO. */
export function clockSkewInfo(estimate: ClockEstimate | null): { offsetMs: number; rttMs: number; measuredAt: string } | null {
  if (!estimate) return null;
  return { offsetMs: Math.round(estimate.offsetMs), rttMs: Math.round(estimate.rttMs), measuredAt: new Date(estimate.measuredAt).toISOString() };
}
