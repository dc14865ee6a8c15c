import type { PeerInfo } from '@tandem/contract';
import type { SiteReach } from '../../../lib/site-reach.ts';
import { primarySites, sourceSite, type MergedSession } from '../../sessions/hooks/session-model.ts';

/** One site's peers list as the console read it (live or only last known). */
export interface SitePeers {
  siteName: string;
  /** Undefined before the first answer. */
  peers: PeerInfo[] | undefined;
  reach: SiteReach;
  /** When the console received the list (console clock, ms); 0 before the first answer. */
  receivedAt: number;
}

/** How one end of a link sees it: the state its agent reported, and whether that report is live. */
export interface LinkEnd {
  /** The site whose agent reports this end. */
  site: string;
  /** The other site as this end's agent knows it; null when the console never got this end's list. */
  peer: PeerInfo | null;
  reach: SiteReach;
  /** The console cannot ask this site at all (not among its sites) or never got an answer. */
  known: boolean;
  receivedAt: number;
}

/** The link state the overview shows: `connected` only when a live end confirms it and no live end says otherwise. */
export type LinkVerdict = 'connected' | 'connecting' | 'down' | 'unknown';

/** One session between the two sites of a link, with the direction data flows now over it. */
export interface LinkSession {
  entry: MergedSession;
  /** The site that sends (the source), and the one that receives, over this link. */
  from: string;
  to: string;
}

export interface SiteLink {
  /** `alpha|beta`: the two site names, sorted. */
  key: string;
  sites: [string, string];
  ends: [LinkEnd, LinkEnd];
  verdict: LinkVerdict;
  sessions: LinkSession[];
}

const verdictRank: Record<LinkVerdict, number> = { connected: 0, unknown: 1, connecting: 2, down: 3 };

/**
 * The verdict from both ends: what live ends say (the worse of them);
 * `unknown` when no end is live. An end only last known never makes a link
 * look connected: the site may have lost it since.
 */
export function linkVerdict(ends: LinkEnd[]): LinkVerdict {
  const live = ends.filter((end) => end.known && end.reach.live && end.peer);
  if (live.length === 0) return 'unknown';
  return live.map((end) => end.peer!.link as LinkVerdict).reduce((worst, each) => (verdictRank[each] > verdictRank[worst] ? each : worst));
}

const linkKey = (a: string, b: string): [string, string, string] => {
  const [first, second] = [a, b].sort((x, y) => x.localeCompare(y));
  return [`${first}|${second}`, first, second];
};

/**
 * Every link between sites, from the peers lists of the sites the console
 * knows (a site that pairs with one the console does not know still shows
 * that link, with the unknown end marked so), and every session placed on
 * the links it uses: from each of its primary sites to its secondary site,
 * in the direction data flows now (after a failback, secondary to primary).
 */
export function buildSiteLinks(lists: SitePeers[], sessions: MergedSession[]): SiteLink[] {
  const links = new Map<string, SiteLink>();
  const byName = new Map(lists.map((list) => [list.siteName, list]));
  const endOf = (site: string, other: string): LinkEnd => {
    const list = byName.get(site);
    if (!list) return { site, peer: null, reach: { live: false, unknownSince: null, reason: 'not a site of this console' }, known: false, receivedAt: 0 };
    return { site, peer: list.peers?.find((peer) => peer.site === other) ?? null, reach: list.reach, known: list.peers !== undefined, receivedAt: list.receivedAt };
  };
  const ensure = (a: string, b: string): SiteLink => {
    const [key, first, second] = linkKey(a, b);
    let link = links.get(key);
    if (!link) {
      const ends: [LinkEnd, LinkEnd] = [endOf(first, second), endOf(second, first)];
      link = { key, sites: [first, second], ends, verdict: linkVerdict(ends), sessions: [] };
      links.set(key, link);
    }
    return link;
  };
  for (const list of lists) for (const peer of list.peers ?? []) ensure(list.siteName, peer.site);
  for (const entry of sessions) {
    const { session } = entry;
    for (const primary of primarySites(session)) {
      if (primary === session.h2Site) continue;
      const forward = sourceSite(session) === session.h1Site;
      ensure(primary, session.h2Site).sessions.push({ entry, from: forward ? primary : session.h2Site, to: forward ? session.h2Site : primary });
    }
  }
  return [...links.values()].sort((a, b) => a.key.localeCompare(b.key));
}
