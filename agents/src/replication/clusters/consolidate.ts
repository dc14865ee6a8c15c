import type { ClusterMember, MemberHealth, MemberState, SessionHealth } from '@tandem/contract';

/** A member as the cluster defines it. */
export interface MemberDefinition {
  sessionId: string;
  session: string;
  agentId: string;
  site: string;
  local: boolean;
}

/** What a member last reported (times are this agent's clock, ms). */
export interface MemberReport {
  state: Exclude<MemberState, 'unknown'>;
  health: SessionHealth;
  consistencyTime: string | null;
  exposureSeconds: number | null;
  detail: string | null;
  /** When the report arrived here. */
  receivedAt: number;
}

export interface MemberView {
  definition: MemberDefinition;
  last: MemberReport | null;
  /** Why the last attempt to hear from it failed, null after a success. */
  lastError: string | null;
}

export interface Consolidated {
  health: SessionHealth;
  consistencyTime: string | null;
  exposureSeconds: number | null;
  members: ClusterMember[];
}

const rank: Record<SessionHealth, number> = { inactive: 0, normal: 1, warning: 2, severe: 3 };

/** The worse of two healths: severe > warning > normal > inactive. */
export function worseHealth(a: SessionHealth, b: SessionHealth): SessionHealth {
  return rank[a] >= rank[b] ? a : b;
}

const round = (seconds: number) => Math.round(seconds * 1000) / 1000;

/**
 * The processor's consolidation rules. A member that has not reported for
 * longer than `timeoutMs` (or never did) is unknown. The cluster's
 * consistency time is the minimum of the members' (an unknown member counts
 * with the last one it reported; a member without one leaves the cluster
 * without one); its health is the worst member health, at least `warning`
 * when a member is unknown; its exposure is the largest member exposure,
 * each aged by how long ago it was reported.
 */
export function consolidate(views: MemberView[], now: number, timeoutMs: number): Consolidated {
  const members: ClusterMember[] = views.map(({ definition, last, lastError }) => {
    const unknown = last === null || now - last.receivedAt > timeoutMs;
    const age = last ? Math.max(0, now - last.receivedAt) / 1000 : 0;
    return {
      session: definition.session,
      sessionId: definition.sessionId,
      site: definition.site,
      agentId: definition.agentId,
      local: definition.local,
      status: unknown ? 'unknown' : 'reporting',
      state: unknown ? 'unknown' : last.state,
      health: (unknown ? 'unknown' : last.health) as MemberHealth,
      consistencyTime: last?.consistencyTime ?? null,
      exposureSeconds: last && last.exposureSeconds !== null ? round(last.exposureSeconds + age) : null,
      reportedAt: last ? new Date(last.receivedAt).toISOString() : null,
      detail: unknown ? (lastError ?? (last ? 'no report within the timeout' : 'has not reported yet')) : last.detail,
    };
  });
  if (members.length === 0) return { health: 'inactive', consistencyTime: null, exposureSeconds: null, members };

  let health: SessionHealth = 'inactive';
  for (const member of members) {
    health = worseHealth(health, member.health === 'unknown' ? 'warning' : member.health);
  }
  let consistencyTime: string | null = null;
  let earliest = Infinity;
  let exposureSeconds: number | null = 0;
  for (const member of members) {
    const time = member.consistencyTime === null ? NaN : Date.parse(member.consistencyTime);
    if (Number.isNaN(time)) earliest = NaN;
    else if (time < earliest) {
      earliest = time;
      consistencyTime = member.consistencyTime;
    }
    exposureSeconds = exposureSeconds === null || member.exposureSeconds === null ? null : Math.max(exposureSeconds, member.exposureSeconds);
  }
  if (Number.isNaN(earliest)) consistencyTime = null;
  return { health, consistencyTime, exposureSeconds, members };
}
