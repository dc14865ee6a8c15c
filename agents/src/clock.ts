/**
 * The agent's wall clock.
 *
 * Agents stamp times with their own clock (a cut, a shipped cycle, a
 * suspension) and other agents read them: sites whose clocks differ would
 * report consistency times in the future and exposures that are too small
 * or too large. So every agent measures the others' clocks over the peer
 * link (link/clock-offset.ts) and reads a time another site stamped in its
 * own clock (`toLocalTime`); what an agent reports is in its own clock,
 * like `observedAt`.
 *
 * `TANDEM_CLOCK_SKEW_MS` (for tests; read here only) sets this process's
 * wall clock that many milliseconds ahead (negative: behind), as on a host
 * whose clock is set wrong: `Date.now()` and `new Date()` shift, every part
 * of the agent sees the same wrong time, timers and `performance.now()`
 * (durations) do not. Nothing else in the agent knows of it.
 */

let installed = 0;

/** The configured skew in ms (0 without `TANDEM_CLOCK_SKEW_MS`). */
export function configuredClockSkewMs(): number {
  const value = Number(process.env.TANDEM_CLOCK_SKEW_MS ?? 0);
  return Number.isFinite(value) ? Math.trunc(value) : 0;
}

/** Shifts this process's wall clock by `TANDEM_CLOCK_SKEW_MS`, once (the agent daemon calls it first thing). Returns the skew. */
export function applyClockSkew(): number {
  const skew = configuredClockSkewMs();
  if (skew === 0 || installed !== 0) return installed || skew;
  installed = skew;
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  const now = () => realNow() + skew;
  globalThis.Date = new Proxy(RealDate, {
    construct(target, args: unknown[], newTarget) {
      return Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget === globalThis.Date ? target : newTarget) as object;
    },
    apply(target, _this, args: unknown[]) {
      // `Date()` called as a function: the current time as a string.
      return args.length === 0 ? new target(now()).toString() : Reflect.apply(target, undefined, args);
    },
    get(target, property, receiver) {
      if (property === 'now') return now;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  return skew;
}
