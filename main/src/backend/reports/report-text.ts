import type { HistoryPoint } from '@tandem/contract';

/** `beta connected`, `beta down since T`: a history point's peer links in one cell (CSV and PDF alike). */
export function peersText(point: Pick<HistoryPoint, 'peers'>): string {
  return point.peers.map((peer) => (peer.unreachableSince ? `${peer.site} ${peer.link} since ${peer.unreachableSince}` : `${peer.site} ${peer.link}`)).join('; ');
}

/** A protection window in words: `45 s`, `12 min`, `3.5 h`, `2.1 d` (as the console's Protection section shows it). */
export function windowText(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1).replace(/\.0$/, '')} h`;
  return `${(seconds / 86_400).toFixed(1).replace(/\.0$/, '')} d`;
}
