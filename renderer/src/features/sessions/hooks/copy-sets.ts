import type { LastVerify, PairInfo, SessionInfo, SessionState } from '@tandem/contract';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { formatTime, sourceSite, targetSite, type MergedSession } from './session-model.ts';

/** States in which the agent adds and removes copy sets (defined, and started sessions that are not failed over). */
const editableStates: SessionState[] = ['defined', 'preparing', 'prepared', 'suspended'];

export function copySetsEditable(session: SessionInfo): boolean {
  return editableStates.includes(session.state);
}

/** The console site to add and remove copy sets at: the session's H1 site (where it was defined), when connected. */
export function h1SiteOf(entry: MergedSession, sites: SiteSummary[]): SiteSummary | undefined {
  return sites.find((site) => site.site === entry.session.h1Site);
}

/** What removing a copy set does, said before it happens. */
export function removeConsequence(session: SessionInfo, pair: PairInfo): string {
  const others = session.pairs.length - 1;
  const rest = others === 0 ? 'It is the session’s only copy set.' : others === 1 ? 'The other copy set keeps mirroring.' : `The other ${others} copy sets keep mirroring.`;
  if (session.state === 'defined') return `${pair.h1Volume} → ${pair.h2Volume} leaves ${session.name}; nothing was copied yet. ${rest}`;
  return (
    `${session.h1Site}:${pair.h1Volume} stops being mirrored to ${session.h2Site}:${pair.h2Volume}; its out-of-sync tracking at both sites is dropped, ` +
    `so adding it again copies everything. Both volumes keep their data (${targetSite(session)}'s copy is as of the last write it received). ${rest}`
  );
}

/** Staged copy sets exclude the volumes the session already mirrors, at either site. */
export function takenVolumes(session: SessionInfo): { h1: string[]; h2: string[] } {
  return { h1: session.pairs.map((pair) => pair.h1Volume), h2: session.pairs.map((pair) => pair.h2Volume) };
}

/** "Verified by the agent at …: 4,096 tracks compared, 0 differ", and why it is not ok. */
export function lastVerifyText(verify: LastVerify, session: SessionInfo): { headline: string; explanation: string | null } {
  const by = verify.trigger === 'failback' ? 'by the agent after the failback' : 'on request';
  const headline = `Verified ${by} at ${formatTime(verify.finishedAt)}: ${verify.comparedTracks.toLocaleString('en-US')} tracks compared, ${verify.differingTracks.toLocaleString('en-US')} differ`;
  if (verify.ok) return { headline, explanation: null };
  const parts: string[] = [];
  if (verify.differingTracks > 0) {
    parts.push(
      `${verify.differingTracks.toLocaleString('en-US')} track${verify.differingTracks === 1 ? '' : 's'} held different data at ${sourceSite(session)} and ${targetSite(session)}` +
        (verify.resyncStarted ? '; they were marked and are being copied again' : '; they were not copied again'),
    );
  }
  if (verify.unverifiedTracks > 0) {
    parts.push(`${verify.unverifiedTracks.toLocaleString('en-US')} track${verify.unverifiedTracks === 1 ? ' was' : 's were'} being written during the compare and could not be verified`);
  }
  return { headline, explanation: `Not verified equal: ${parts.join('; ')}.` };
}
