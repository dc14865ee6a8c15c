import { describe, expect, it } from 'vitest';
import { ClockOffset, describeSkew, skewToCorrect, skewWorthWarning } from './clock-offset.ts';

describe('ClockOffset: the other clock from heartbeat round trips', () => {
  it('takes the sample with the shortest round trip; a reply held up says little', () => {
    const clock = new ClockOffset();
    expect(clock.estimate).toBeNull();
    // The other clock runs 120 s ahead; sent at 1000, answered at its 121_010, back at 1020 (rtt 20).
    clock.add(1000, 121_010, 1020);
    // Held up behind data: rtt 400, the answer stamped late.
    clock.add(2000, 122_390, 2400);
    expect(clock.estimate).toMatchObject({ offsetMs: 120_000, rttMs: 20, measuredAt: 2400 });
    // Nonsense (arrived before it was sent) is ignored.
    clock.add(3000, 0, 2999);
    expect(clock.estimate?.offsetMs).toBe(120_000);
  });

  it("a new connection's first sample replaces the old ones (the other agent may have restarted with its clock set right)", () => {
    const clock = new ClockOffset();
    clock.add(1000, 121_001, 1002);
    clock.reconnected();
    // Until then the old estimate stands (times it stamped are still read with it).
    expect(clock.estimate?.offsetMs).toBe(120_000);
    clock.add(5000, 5010, 5020);
    expect(clock.estimate).toMatchObject({ offsetMs: 0, rttMs: 20 });
  });

  it('warns from 2 s measured well enough, and says it with the site and the offset', () => {
    expect(skewWorthWarning({ offsetMs: 1999, rttMs: 1 })).toBe(false);
    expect(skewWorthWarning({ offsetMs: -2000, rttMs: 1 })).toBe(true);
    expect(skewWorthWarning({ offsetMs: 120_000, rttMs: 5000 })).toBe(false);
    expect(skewWorthWarning(null)).toBe(false);
    expect(describeSkew('beta', { offsetMs: 120_000, rttMs: 2 })).toBe("the clock of beta is 120.0 s ahead of this agent's (measured over the peer link, ±1 ms)");
    expect(describeSkew('alpha', { offsetMs: -90_500, rttMs: 3 })).toMatch(/^the clock of alpha is 90\.5 s behind this agent's .*±2 ms/);
  });

  it('times another site stamped are shifted only by an offset beyond what the measurement can tell (equal clocks measure up to half a round trip off)', () => {
    // With equal clocks the other side reads its clock between our send and our receipt: the estimate is within rtt / 2.
    const equal = new ClockOffset();
    equal.add(1000, 1003, 1006);
    expect(Math.abs(equal.estimate!.offsetMs)).toBeLessThanOrEqual(equal.estimate!.rttMs / 2);
    expect(skewToCorrect(equal.estimate)).toBe(false);
    expect(skewToCorrect({ offsetMs: 40, rttMs: 2 })).toBe(false);
    expect(skewToCorrect({ offsetMs: -120_000, rttMs: 2 })).toBe(true);
    expect(skewToCorrect({ offsetMs: 300, rttMs: 600 })).toBe(false);
    expect(skewToCorrect(null)).toBe(false);
  });
});
