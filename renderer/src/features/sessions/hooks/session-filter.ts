import type { MergedSession, SessionGroup } from './session-model.ts';

/** Which sessions the page shows: all, or only those an administrator should look at. */
export type SessionShow = 'all' | 'attention';

export interface SessionFilter {
  /** Matched, case-insensitively, against the session's name, type, both sites and every copy set's volumes. */
  query: string;
  show: SessionShow;
}

/** How cards are ordered within each cluster: by name, by exposure (most behind first), or what needs attention first. */
export type SessionSort = 'name' | 'exposure' | 'attention';

export function sortSessions(entries: MergedSession[], sort: SessionSort): MergedSession[] {
  const byName = (a: MergedSession, b: MergedSession) => a.session.name.localeCompare(b.session.name);
  const order: Record<SessionSort, (a: MergedSession, b: MergedSession) => number> = {
    name: byName,
    // No exposure (not started, shipping between cycles) after every known one.
    exposure: (a, b) => (b.session.exposureSeconds ?? -1) - (a.session.exposureSeconds ?? -1) || byName(a, b),
    attention: (a, b) => Number(needsAttention(b)) - Number(needsAttention(a)) || byName(a, b),
  };
  return [...entries].sort(order[sort]);
}

/** At most this many session cards are drawn at first; "Show more" adds as many again. */
export const SESSION_CARDS_PAGE = 50;

/**
 * Needs attention: anything but a live, Prepared session in normal health
 * (suspended, failed over, copying, unknown because its site went silent,
 * warning or severe health).
 */
export function needsAttention(entry: MergedSession): boolean {
  return !entry.shown.reach.live || entry.session.state !== 'prepared' || entry.session.health !== 'normal';
}

export function filterSessions(entries: MergedSession[], filter: SessionFilter): MergedSession[] {
  const words = filter.query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  return entries.filter((entry) => {
    if (filter.show === 'attention' && !needsAttention(entry)) return false;
    if (words.length === 0) return true;
    const { session } = entry;
    const text = [session.name, session.type, session.h1Site, session.h2Site, ...session.pairs.flatMap((pair) => [pair.h1Volume, pair.h2Volume])]
      .join(' ')
      .toLowerCase();
    return words.every((word) => text.includes(word));
  });
}

/**
 * The groups cut to `limit` session cards in all, in their order (a cluster
 * whose members are all cut keeps its header only if it has none at all:
 * an empty cluster says so itself). Returns how many sessions were left out.
 */
export function limitGroups(groups: SessionGroup[], limit: number): { groups: SessionGroup[]; hidden: number } {
  let left = limit;
  let hidden = 0;
  const shown: SessionGroup[] = [];
  for (const group of groups) {
    const take = group.sessions.slice(0, Math.max(0, left));
    hidden += group.sessions.length - take.length;
    left -= take.length;
    if (take.length > 0 || group.sessions.length === 0) shown.push({ ...group, sessions: take });
  }
  return { groups: shown, hidden };
}
