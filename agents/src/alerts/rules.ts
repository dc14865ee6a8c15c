import type { AlertKind, AlertSeverity, AlertSubject, PoolStats, SessionAlertThresholds, SessionInfo } from '@tandem/contract';

/** An async session's queue of unshipped consistency groups and the limit past which it suspends. */
export interface Backlog {
  bytes: number;
  limitBytes: number;
}

/** What the rules read: the views the control API answers with, read once per evaluation. */
/** The warnings of a session's CDP journal at this agent (cdp/retention.ts journalStatus). */
export interface JournalWarningInput {
  level: 'warning' | 'severe';
  code: 'window-short' | 'nearly-full';
  message: string;
}

export interface AlertInputs {
  now: number;
  sessions: Array<{ info: SessionInfo; thresholds: SessionAlertThresholds; backlog: Backlog | undefined; journal?: JournalWarningInput[] }>;
  /** Null when the pool could not be read (its rule then keeps what it had: see `unknown`). */
  pool: PoolStats | null;
  poolFullPercent: number;
  /** Keys of the alerts active now: a value rule holds them until the value is back under the threshold by the band. */
  active: ReadonlySet<string>;
}

/** A rule's finding: the condition behind one alert holds now. */
export interface Condition {
  key: string;
  kind: AlertKind;
  severity: AlertSeverity;
  subject: AlertSubject;
  message: string;
  value: number | null;
  threshold: number | null;
}

/**
 * Hysteresis of the value rules: an active alert stays until the value is
 * back under this share of its threshold (exposure 90 % of the RPO target;
 * percent rules 5 points under), so a value hovering at the line raises once.
 */
export const exposureClearRatio = 0.9;
export const percentClearBand = 5;

/** Session states in which a session watches its links and exposure (a defined session mirrors nothing yet). */
const runningStates = new Set<SessionInfo['state']>(['preparing', 'prepared', 'suspending', 'suspended', 'recovering', 'target-available']);

const round1 = (value: number) => Math.round(value * 10) / 10;

/** The pool's use of what it can grow into: extents in use over extents it has plus what its file system can still hold. */
export function poolUsedPercent(pool: PoolStats): number {
  const room = pool.extentCount * pool.trackSize + pool.filesystemFreeBytes;
  return room > 0 ? (pool.usedBytes / room) * 100 : 0;
}

function sessionConditions(
  info: SessionInfo,
  thresholds: SessionAlertThresholds,
  backlog: Backlog | undefined,
  now: number,
  active: ReadonlySet<string>,
): Condition[] {
  if (!thresholds.enabled) return [];
  const found: Condition[] = [];
  const session = info.name;
  const sessionSubject: AlertSubject = { kind: 'session', session, name: null };
  if (info.state === 'suspended' || info.state === 'suspending') {
    found.push({
      key: `session-suspended:${session}`,
      kind: 'session-suspended',
      severity: 'critical',
      subject: sessionSubject,
      message: `session ${session} is suspended${info.detail ? `: ${info.detail}` : ''}`,
      value: null,
      threshold: null,
    });
  }
  if (runningStates.has(info.state)) {
    for (const peer of info.peers) {
      if (peer.link === 'connected') continue;
      const key = `link-down:${session}:${peer.site}`;
      const since = peer.unreachableSince ?? peer.since;
      // An active alert holds until the link is connected again (after a restart the agent's "down since" starts anew).
      if (since === null && !active.has(key)) continue;
      const downSeconds = since === null ? 0 : (now - Date.parse(since)) / 1000;
      if (!(downSeconds >= thresholds.linkDownSeconds) && !active.has(key)) continue;
      found.push({
        key,
        kind: 'link-down',
        severity: 'critical',
        subject: { kind: 'link', session, name: peer.site },
        message: `session ${session}: the link to ${peer.site} has been down since ${since ?? 'this agent started'} (over ${thresholds.linkDownSeconds} s)`,
        value: round1(downSeconds),
        threshold: thresholds.linkDownSeconds,
      });
    }
    const target = thresholds.rpoTargetSeconds;
    const exposure = info.exposureSeconds;
    if (target !== null && exposure !== null) {
      const key = `exposure:${session}`;
      const line = active.has(key) ? target * exposureClearRatio : target;
      if (exposure > line) {
        found.push({
          key,
          kind: 'exposure',
          severity: 'warning',
          subject: sessionSubject,
          message: `session ${session}: exposure ${round1(exposure)} s is above its RPO target of ${target} s`,
          value: round1(exposure),
          threshold: target,
        });
      }
    }
  }
  for (const pair of info.pairs) {
    if (pair.state !== 'failed') continue;
    found.push({
      key: `copy-set-failed:${session}:${pair.id}`,
      kind: 'copy-set-failed',
      severity: 'critical',
      subject: { kind: 'copy-set', session, name: pair.id },
      message: `session ${session}: copy set ${pair.h1Volume} -> ${pair.h2Volume} is broken${pair.reason ? `: ${pair.reason}` : ''}`,
      value: null,
      threshold: null,
    });
  }
  const verify = info.lastVerify;
  if (verify && verify.differingTracks > 0) {
    found.push({
      key: `verify-differences:${session}`,
      kind: 'verify-differences',
      severity: 'warning',
      subject: sessionSubject,
      message:
        `session ${session}: the verify of ${verify.finishedAt} found ${verify.differingTracks} differing track(s)` +
        (verify.resyncStarted ? ' (a resync copying them started)' : ''),
      value: verify.differingTracks,
      threshold: 0,
    });
  }
  if (backlog && backlog.limitBytes > 0) {
    const key = `backlog:${session}`;
    const percent = (backlog.bytes / backlog.limitBytes) * 100;
    const line = active.has(key) ? thresholds.backlogPercent - percentClearBand : thresholds.backlogPercent;
    if (percent >= line) {
      found.push({
        key,
        kind: 'backlog',
        severity: 'warning',
        subject: sessionSubject,
        message: `session ${session}: ${round1(percent)} % of the async backlog limit is queued (threshold ${thresholds.backlogPercent} %)`,
        value: round1(percent),
        threshold: thresholds.backlogPercent,
      });
    }
  }
  return found;
}

/** The journal's warnings as they are (retention and its byte budget give them their own hysteresis). */
function journalConditions(session: string, warnings: JournalWarningInput[]): Condition[] {
  return warnings.map((warning) => ({
    key: `journal-${warning.code}:${session}`,
    kind: warning.code === 'nearly-full' ? 'journal-nearly-full' : 'journal-window-short',
    severity: warning.level === 'severe' ? 'critical' : 'warning',
    subject: { kind: 'session', session, name: null },
    message: `session ${session}: ${warning.message}`,
    value: null,
    threshold: null,
  }));
}

/** Every condition that holds now. Pure: the evaluator decides what is raised and cleared. */
export function evaluateRules(inputs: AlertInputs): Condition[] {
  const found: Condition[] = [];
  for (const { info, thresholds, backlog, journal } of inputs.sessions) {
    found.push(...sessionConditions(info, thresholds, backlog, inputs.now, inputs.active));
    if (thresholds.enabled && journal) found.push(...journalConditions(info.name, journal));
  }
  if (inputs.pool) {
    const key = 'pool-full';
    const percent = poolUsedPercent(inputs.pool);
    const line = inputs.active.has(key) ? inputs.poolFullPercent - percentClearBand : inputs.poolFullPercent;
    if (percent >= line) {
      found.push({
        key,
        kind: 'pool-full',
        severity: percent >= 98 ? 'critical' : 'warning',
        subject: { kind: 'pool', session: null, name: null },
        message: `the pool is ${round1(percent)} % full (threshold ${inputs.poolFullPercent} %)`,
        value: round1(percent),
        threshold: inputs.poolFullPercent,
      });
    }
  }
  return found;
}
