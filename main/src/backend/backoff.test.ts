import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  const policy = { initialMs: 500, maxMs: 30_000, factor: 2 };

  it('doubles from the initial delay and stops at the maximum', () => {
    const noJitter = () => 1;
    expect([0, 1, 2, 3].map((attempt) => backoffDelay(attempt, policy, noJitter))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(20, policy, noJitter)).toBe(30_000);
  });

  it('jitters down by at most 20 %', () => {
    expect(backoffDelay(0, policy, () => 0)).toBe(400);
    for (let index = 0; index < 50; index++) {
      const delay = backoffDelay(3, policy);
      expect(delay).toBeGreaterThanOrEqual(3200);
      expect(delay).toBeLessThanOrEqual(4000);
    }
  });
});
