import type { SessionHealth, SessionInfo, SessionPeer } from '@tandem/contract';
import { formatClock } from '../../../lib/site-reach.ts';
import { copyingPairs, inconsistentPairs, inconsistentReasonText, stateLabel, healthLook, type MergedSession, type SessionView } from './session-model.ts';

/**
 * Where a session's state comes from and how far to trust it: the view
 * shown (live, or only last known), the views of sites the console cannot
 * reach now, and the health the console shows (the agent's, at least
 * warning while any site's view is unknown).
 */
export interface SessionTrust {
  /** The view shown is read over a live connection. */
  live: boolean;
  /** The site whose agent reported the view shown. */
  from: string;
  /** When that agent composed it (its clock). */
  observedAt: string;
  /** When the console received it (console clock, ms). */
  receivedAt: number;
  /** When the view shown stopped being confirmed (ISO), when it is not live. */
  unknownSince: string | null;
  reason: string | null;
  /** Other sites of the session whose view is only last known. */
  lostViews: SessionView[];
  health: SessionHealth;
  /** Why the console shows a worse health than the agent reported. */
  healthNote: string | null;
  /** How far the reporting agent's clock is off the console's, when it is more than a few seconds. */
  clockOffsetMs: number | null;
}

const healthRank: Record<SessionHealth, number> = { inactive: 0, normal: 1, warning: 2, severe: 3 };

/** The health, raised to `warning` when it is better. */
export function atLeastWarning(health: SessionHealth): SessionHealth {
  return healthRank[health] < healthRank.warning ? 'warning' : health;
}

/** A clock difference below this is latency, not worth a word. */
const clockNoticeMs = 5000;

export function sessionTrust(entry: MergedSession): SessionTrust {
  const { shown } = entry;
  const lostViews = entry.views.filter((view) => view !== shown && !view.reach.live);
  const unknown = [...(shown.reach.live ? [] : [shown]), ...lostViews];
  const health = unknown.length > 0 ? atLeastWarning(entry.session.health) : entry.session.health;
  const healthNote =
    health !== entry.session.health
      ? `${healthLook[health].label} here: what ${unknown.map((view) => view.siteName).join(' and ')} ${unknown.length === 1 ? 'reports' : 'report'} is unknown since ${formatClock(unknown[0].reach.unknownSince)}`
      : null;
  const offset = shown.receivedAt - Date.parse(shown.session.observedAt);
  return {
    live: shown.reach.live,
    from: shown.siteName,
    observedAt: shown.session.observedAt,
    receivedAt: shown.receivedAt,
    unknownSince: shown.reach.unknownSince,
    reason: shown.reach.reason,
    lostViews,
    health,
    healthNote,
    clockOffsetMs: Number.isFinite(offset) && Math.abs(offset) > clockNoticeMs ? offset : null,
  };
}

/** `Prepared · Normal · recoverable: yes`: a view's state in a few words. */
export function lastKnownText(session: SessionInfo): string {
  return `${stateLabel(session.state)} · ${healthLook[session.health].label} · recoverable: ${session.recoverable ? 'yes' : 'no'}`;
}

/** Which site executed the state shown, and when the reporting site learned it. */
export function stateFromText(session: SessionInfo, reportingSite: string): string {
  const at = formatClock(session.stateFrom.at);
  return session.stateFrom.site === reportingSite ? `state set at ${reportingSite} ${at}` : `state from ${session.stateFrom.site}, learned ${at}`;
}

/** Another agent of the session as the reporting one sees it: `alpha (source): unreachable since 12:01:03`. */
export function peerText(peer: SessionPeer): string {
  const who = `${peer.site} (${peer.role})`;
  if (peer.unreachableSince) return `${who}: unreachable since ${formatClock(peer.unreachableSince)}${peer.link === 'connecting' ? ', reconnecting' : ''}`;
  if (peer.link === 'connected') return `${who}: connected${peer.since ? ` since ${formatClock(peer.since)}` : ''}`;
  return `${who}: ${peer.link}`;
}

/** Another agent's clock this far off the reporting agent's is shown (the agent warns from 2 s; latency is below). */
const peerClockNoticeMs = 2000;

/** `2 min`, `45 s`: a clock offset in words. */
function offsetWords(ms: number): string {
  const seconds = Math.abs(ms) / 1000;
  return seconds >= 90 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds)} s`;
}

/**
 * `beta's clock is 2 min ahead of alpha's`: another agent's clock as the
 * reporting agent measured it over the peer link, when it is off by more than
 * latency (null otherwise). Times on the card are the reporting agent's.
 */
export function peerClockText(peer: SessionPeer, reportingSite: string): string | null {
  const clock = peer.clock;
  if (!clock || Math.abs(clock.offsetMs) < peerClockNoticeMs) return null;
  return `${peer.site}'s clock is ${offsetWords(clock.offsetMs)} ${clock.offsetMs > 0 ? 'ahead of' : 'behind'} ${reportingSite}'s`;
}

/**
 * "Recoverable" as the agent says it, and why not: a failover now brings up
 * a consistent image only when the agent says so.
 */
export function recoverableText(session: SessionInfo): { value: string; why: string | null } {
  if (session.recoverable) {
    const partial = inconsistentPairs(session);
    return { value: 'yes', why: partial.length > 0 ? `except ${partial.map((pair) => `${pair.h2Volume} (${inconsistentReasonText(pair)})`).join(', ')}` : null };
  }
  switch (session.state) {
    case 'defined':
      return { value: 'no', why: 'never started: the target holds no copy yet' };
    case 'preparing': {
      const copying = copyingPairs(session);
      return {
        value: 'no',
        why: `${copying.length > 0 ? `copying ${copying.map((pair) => pair.h1Volume).join(', ')}` : 'copying'}: the target is not a consistent image until the session is Prepared`,
      };
    }
    case 'suspending':
    case 'suspended':
      return { value: 'no', why: 'suspended before the target held a consistent image (an initial copy or resync had not finished)' };
    case 'recovering':
      return { value: 'no', why: 'a recover is under way' };
    case 'target-available':
      return { value: 'no', why: 'already failed over: the target is in production' };
    default:
      return { value: 'no', why: session.detail };
  }
}
