import type { HistoryPoint } from '@tandem/contract';

/** `beta connected`, `beta down since T`: a history point's peer links in one cell (CSV and PDF alike). */
export function peersText(point: Pick<HistoryPoint, 'peers'>): string {
  return point.peers.map((peer) => (peer.unreachableSince ? `${peer.site} ${peer.link} since ${peer.unreachableSince}` : `${peer.site} ${peer.link}`)).join('; ');
}
