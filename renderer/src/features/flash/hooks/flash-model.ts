import {
  EstablishFlashRequestSchema,
  FlashSessionNameSchema,
  formatSize,
  type EstablishFlashRequest,
  type FlashPairInfo,
  type FlashPairRequest,
  type FlashSessionInfo,
  type FlashState,
  type SessionInfo,
  type VolumeInfo,
} from '@tandem/contract';

/** A volume's part in a flash copy relationship, as the volume screen shows it. */
export interface VolumeFlashRole {
  role: 'source' | 'target';
  session: string;
  pair: FlashPairInfo;
  /** The volume at the other end of the pair. */
  other: string;
}

/** A relationship exists until it is withdrawn; a withdrawn session is kept (stopped or idle-copied) until forgotten. */
export function holdsRelationships(session: FlashSessionInfo): boolean {
  return !session.withdrawnAt && session.state !== 'stopped';
}

/** Every volume's flash roles at one site, from that site's flash sessions. */
export function volumeFlashRoles(sessions: FlashSessionInfo[]): Map<string, VolumeFlashRole[]> {
  const roles = new Map<string, VolumeFlashRole[]>();
  const add = (volume: string, role: VolumeFlashRole) => roles.set(volume, [...(roles.get(volume) ?? []), role]);
  for (const session of sessions) {
    if (!holdsRelationships(session)) continue;
    for (const pair of session.pairs) {
      add(pair.source, { role: 'source', session: session.name, pair, other: pair.target });
      add(pair.target, { role: 'target', session: session.name, pair, other: pair.source });
    }
  }
  return roles;
}

/** What the site's mirror sessions do with its volumes: the copies they write (never a flash target) and the primaries they mirror. */
export interface MirrorUse {
  /** volume -> mirror session that writes into it here. */
  mirrorTargets: Map<string, string>;
  /** volume -> "session to site" for volumes mirrored from here. */
  mirroredPrimaries: Map<string, string>;
}

export function mirrorUse(sessions: SessionInfo[]): MirrorUse {
  const mirrorTargets = new Map<string, string>();
  const mirroredPrimaries = new Map<string, string>();
  for (const session of sessions) {
    if (session.state === 'defined') continue;
    // This site sends when its role is the side the direction starts from.
    const sending = (session.direction === 'h1-h2') === (session.role === 'h1');
    const other = session.role === 'h1' ? session.h2Site : session.h1Site;
    for (const pair of session.pairs) {
      const local = session.role === 'h1' ? pair.h1Volume : pair.h2Volume;
      if (sending) mirroredPrimaries.set(local, `${session.name} to ${other}`);
      else mirrorTargets.set(local, session.name);
    }
  }
  return { mirrorTargets, mirroredPrimaries };
}

export interface TargetChoices {
  offered: VolumeInfo[];
  /** Volumes not offered, each with the reason in words (the source itself is not listed). */
  refused: { volume: VolumeInfo; reason: string }[];
}

/**
 * The volumes a flash copy of `source` may overwrite: same size, same site
 * (the list is one site's), not the source itself, a writable volume (not a
 * snapshot), in no flash relationship yet (neither target nor source), not
 * the copy of a mirror, and not used by another pair of the group being
 * built.
 */
export function targetChoices(
  source: VolumeInfo | undefined,
  volumes: VolumeInfo[],
  roles: Map<string, VolumeFlashRole[]>,
  mirror: MirrorUse,
  group: FlashPairRequest[],
): TargetChoices {
  const offered: VolumeInfo[] = [];
  const refused: TargetChoices['refused'] = [];
  if (!source) return { offered, refused };
  for (const volume of volumes) {
    if (volume.name === source.name) continue;
    const reason = refusal(source, volume, roles, mirror, group);
    if (reason) refused.push({ volume, reason });
    else offered.push(volume);
  }
  return { offered, refused };
}

function refusal(source: VolumeInfo, volume: VolumeInfo, roles: Map<string, VolumeFlashRole[]>, mirror: MirrorUse, group: FlashPairRequest[]): string | null {
  if (volume.sizeBytes !== source.sizeBytes) return `${formatSize(volume.sizeBytes)}, not ${formatSize(source.sizeBytes)}`;
  if (volume.kind === 'snapshot') return 'a snapshot';
  if (volume.readOnly) return 'read-only';
  const asTarget = roles.get(volume.name)?.find((role) => role.role === 'target');
  if (asTarget) return `already the target of ${asTarget.other} in flash session ${asTarget.session}`;
  // A source's data must stay what its own targets read: the agent refuses to flash onto it.
  const asSource = roles.get(volume.name)?.find((role) => role.role === 'source');
  if (asSource) return `the source of ${asSource.other} in flash session ${asSource.session}`;
  const mirrorSession = mirror.mirrorTargets.get(volume.name);
  if (mirrorSession) return `the mirror copy of session ${mirrorSession}`;
  if (group.some((pair) => pair.target === volume.name)) return 'already a target in this group';
  if (group.some((pair) => pair.source === volume.name)) return 'a source in this group';
  return null;
}

/** Why a volume cannot be a flash source: it is the target of a relationship (cascades are not offered), or null. */
export function sourceRefusal(volume: VolumeInfo, roles: Map<string, VolumeFlashRole[]>): string | null {
  const asTarget = roles.get(volume.name)?.find((role) => role.role === 'target');
  return asTarget ? `the target of ${asTarget.other} in flash session ${asTarget.session}` : null;
}

/** Sources for a pair: not the target of a relationship, and for another pair of the group neither a target nor a source in it. */
export function sourceChoices(volumes: VolumeInfo[], roles: Map<string, VolumeFlashRole[]>, group: FlashPairRequest[]): VolumeInfo[] {
  return volumes.filter((volume) => !sourceRefusal(volume, roles) && !group.some((pair) => pair.target === volume.name || pair.source === volume.name));
}

/** The wizard's choices before they become a request. */
export interface FlashDraft {
  name: string;
  pairs: FlashPairRequest[];
  backgroundCopy: boolean;
  /** false: as fast as the disks go. */
  rateLimited: boolean;
  rateMiBps: number | string;
  incremental: boolean;
  writeInhibitTarget: boolean;
  preserveMirror: boolean;
}

export const defaultDraft: FlashDraft = {
  name: '',
  pairs: [],
  backgroundCopy: true,
  rateLimited: false,
  rateMiBps: 100,
  incremental: false,
  writeInhibitTarget: false,
  preserveMirror: false,
};

export type DraftField = 'name' | 'pairs' | 'rate';

/** What is wrong with a draft, per field, in words; an empty object means it can be established. */
export function draftProblems(draft: FlashDraft): Partial<Record<DraftField, string>> {
  const problems: Partial<Record<DraftField, string>> = {};
  if (draft.name.trim() !== '') {
    const name = FlashSessionNameSchema.safeParse(draft.name.trim());
    if (!name.success) problems.name = name.error.issues[0]?.message ?? 'not a valid name';
  }
  if (draft.pairs.length === 0) problems.pairs = 'choose a source and a target';
  if (draft.backgroundCopy && draft.rateLimited) {
    const rate = Number(draft.rateMiBps);
    if (String(draft.rateMiBps).trim() === '' || !Number.isFinite(rate) || rate <= 0) problems.rate = 'the rate is a number of MiB/s above zero';
    else if (rate > 100_000) problems.rate = 'at most 100000 MiB/s';
  }
  return problems;
}

/** The establish request for a valid draft (the contract's schema fills in the rest). */
export function establishRequest(draft: FlashDraft): EstablishFlashRequest {
  return EstablishFlashRequestSchema.parse({
    ...(draft.name.trim() ? { name: draft.name.trim() } : {}),
    pairs: draft.pairs,
    backgroundCopy: draft.backgroundCopy,
    rateMiBps: draft.backgroundCopy && draft.rateLimited ? Number(draft.rateMiBps) : null,
    incremental: draft.incremental,
    writeInhibitTarget: draft.writeInhibitTarget,
    preserveMirror: draft.preserveMirror,
  });
}

/** The warning a target gets before anything happens: its data is replaced. */
export function overwriteWarning(pair: FlashPairRequest): string {
  return `Everything on ${pair.target} is replaced by the point-in-time image of ${pair.source}. Hosts using ${pair.target} see its data change at once.`;
}

export const flashStateLook: Record<FlashState, { label: string; color: string }> = {
  'idle-copied': { label: 'Idle / copied', color: 'green' },
  preparing: { label: 'Preparing', color: 'yellow' },
  prepared: { label: 'Prepared', color: 'yellow' },
  copying: { label: 'Copying', color: 'blue' },
  stopping: { label: 'Stopping', color: 'orange' },
  stopped: { label: 'Stopped', color: 'gray' },
  suspended: { label: 'Suspended', color: 'orange' },
};

/** `12.5 MiB/s`, or a dash when nothing moves. */
export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatSize(Math.round(bytesPerSecond))}/s` : '–';
}

/** Copied tracks of the whole session in percent (by tracks, so pairs of different sizes weigh right). */
export function sessionPercent(session: FlashSessionInfo): number {
  const total = session.pairs.reduce((sum, pair) => sum + pair.totalTracks, 0);
  if (total === 0) return 100;
  return (session.pairs.reduce((sum, pair) => sum + pair.copiedTracks, 0) / total) * 100;
}

/** The background copy's rate can be changed while it has something left to copy. */
export function canChangeRate(session: FlashSessionInfo): boolean {
  return holdsRelationships(session) && session.options.backgroundCopy && !isFullyCopied(session) && ['copying', 'suspended'].includes(session.state);
}

/** Background copy done: every target holds every track itself. */
export function isFullyCopied(session: FlashSessionInfo): boolean {
  return session.pairs.every((pair) => pair.copiedTracks >= pair.totalTracks);
}

export type FlashAction = 'refresh' | 'start-copy' | 'reverse' | 'withdraw' | 'pause' | 'resume' | 'forget';

/** What an action does, in the session's own volume names, shown before anything happens. */
export interface FlashActionPlan {
  action: FlashAction;
  label: string;
  title: string;
  /** One sentence per consequence; the first says what is overwritten. */
  consequences: string[];
  warnings: string[];
  color: string;
  /** Overwriting actions need an acknowledgement. */
  confirm: 'button' | 'acknowledge';
}

const allowedStates: Record<FlashAction, FlashState[]> = {
  refresh: ['idle-copied', 'copying', 'suspended'],
  reverse: ['idle-copied', 'copying', 'suspended'],
  withdraw: ['idle-copied', 'copying', 'suspended'],
  pause: ['copying'],
  resume: ['suspended'],
  'start-copy': ['copying', 'suspended', 'idle-copied'],
  forget: ['stopped', 'idle-copied'],
};

export function isFlashActionAllowed(session: FlashSessionInfo, action: FlashAction): boolean {
  // Once withdrawn, a session can only be forgotten.
  if (!holdsRelationships(session)) return action === 'forget';
  if (action === 'forget') return false;
  if (!allowedStates[action].includes(session.state)) return false;
  if (action === 'refresh') return session.options.incremental;
  if (action === 'pause') return session.options.backgroundCopy && !isFullyCopied(session);
  if (action === 'start-copy') return !session.options.backgroundCopy && !isFullyCopied(session);
  return true;
}

const list = (items: string[]) => (items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`);

export function flashActionPlan(session: FlashSessionInfo, action: FlashAction): FlashActionPlan {
  const pairs = session.pairs;
  const targets = list(pairs.map((pair) => pair.target));
  const when = session.pointInTime ? ` (taken ${new Date(session.pointInTime).toLocaleString()})` : '';
  switch (action) {
    case 'refresh': {
      const changed = pairs.reduce((sum, pair) => sum + (pair.changedTracks ? pair.changedTracks.source + pair.changedTracks.target : 0), 0);
      return {
        action,
        label: 'Refresh',
        title: `Refresh ${session.name}?`,
        consequences: [
          ...pairs.map((pair) => `Refresh overwrites target ${pair.target} with a new point-in-time image of ${pair.source}, taken now.`),
          `Only tracks changed since the last point in time are copied (about ${changed} tracks); writes made to ${targets} since then are lost.`,
        ],
        warnings: [],
        color: 'blue',
        confirm: 'acknowledge',
      };
    }
    case 'reverse':
      return {
        action,
        label: 'Reverse restore',
        title: `Reverse restore ${session.name}?`,
        consequences: [
          ...pairs.map((pair) => `Reverse restore overwrites source ${pair.source} with the point-in-time image in ${pair.target}${when}.`),
          session.options.incremental ? 'Only the tracks that differ are copied back.' : 'Every track is copied back.',
        ],
        warnings: [`Stop the applications using ${list(pairs.map((pair) => pair.source))}: their writes since the point in time are lost.`],
        color: 'red',
        confirm: 'acknowledge',
      };
    case 'withdraw': {
      const unfinished = pairs.filter((pair) => pair.copiedTracks < pair.totalTracks);
      return {
        action,
        label: 'Withdraw',
        title: `Withdraw ${session.name}?`,
        consequences: [
          `Withdraw ends the relationship${pairs.length === 1 ? '' : 's'} ${list(pairs.map((pair) => `${pair.source} → ${pair.target}`))}; the sources are no longer copied before they are overwritten.`,
          unfinished.length === 0
            ? `The copy is complete: ${targets} keep${pairs.length === 1 ? 's' : ''} the full point-in-time image as an independent volume.`
            : `The background copy is not finished (${list(unfinished.map((pair) => `${pair.target} ${Math.floor(pair.percent)} %`))}): finish it first, or ${list(unfinished.map((pair) => pair.target))} no longer hold${unfinished.length === 1 ? 's' : ''} a usable image.`,
        ],
        warnings: [],
        color: 'red',
        confirm: 'acknowledge',
      };
    }
    case 'pause':
      return {
        action,
        label: 'Pause copy',
        title: `Pause the background copy of ${session.name}?`,
        consequences: [`The background copy to ${targets} pauses; the point-in-time image stays intact and source writes still copy old data first.`],
        warnings: [],
        color: 'yellow',
        confirm: 'button',
      };
    case 'start-copy':
      return {
        action,
        label: 'Start background copy',
        title: `Start the background copy of ${session.name}?`,
        consequences: [
          `Every track ${targets} still read${pairs.length === 1 ? 's' : ''} through the source is copied in the background, as fast as the disks go (set a rate afterwards to spare host I/O).`,
          `Once done, ${targets} no longer depend${pairs.length === 1 ? 's' : ''} on ${list(pairs.map((pair) => pair.source))}.`,
        ],
        warnings: [],
        color: 'blue',
        confirm: 'button',
      };
    case 'forget':
      return {
        action,
        label: 'Forget',
        title: `Forget ${session.name}?`,
        consequences: [`The withdrawn session ${session.name} leaves the list; ${targets} keep${pairs.length === 1 ? 's' : ''} whatever data ${pairs.length === 1 ? 'it holds' : 'they hold'}.`],
        warnings: [],
        color: 'gray',
        confirm: 'button',
      };
    case 'resume':
      return {
        action,
        label: 'Resume copy',
        title: `Resume the background copy of ${session.name}?`,
        consequences: [`The background copy to ${targets} goes on from where it paused.`],
        warnings: [],
        color: 'blue',
        confirm: 'button',
      };
  }
}

/** Actions offered on a flash session, in order. */
export function availableFlashActions(session: FlashSessionInfo): FlashActionPlan[] {
  const order: FlashAction[] = ['refresh', 'start-copy', 'pause', 'resume', 'reverse', 'withdraw', 'forget'];
  return order.filter((action) => isFlashActionAllowed(session, action)).map((action) => flashActionPlan(session, action));
}
