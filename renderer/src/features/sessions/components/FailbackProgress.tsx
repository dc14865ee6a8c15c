import { Alert, Button, Checkbox, Loader, Stack, Text } from '@mantine/core';
import { SessionSyncedSchema, type FailbackPreflight, type SessionSynced, type VerifyPairReport } from '@tandem/contract';
import { formatSize } from '../../../lib/format.ts';
import { useEffect, useRef, useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { isMultiPrimary, primarySiteOf, primarySites, receivingSites, sourceSite, type MergedSession } from '../hooks/session-model.ts';
import { useSessionAction, useSessionEvents, useVerify } from '../hooks/use-sessions.ts';
import { StateBadge } from './HealthBadge.tsx';
import { LastVerifySummary } from './LastVerifySummary.tsx';
import { PairTable } from './PairTable.tsx';

/** The newest `session.synced` among the events (what the last resync copied, per copy set), if its data is as the contract says. */
export function lastSynced(events: { type: string; id: number; data?: Record<string, unknown> }[] | undefined): SessionSynced | null {
  const newest = (events ?? []).filter((event) => event.type === 'session.synced').sort((a, b) => b.id - a.id)[0];
  const parsed = newest ? SessionSyncedSchema.safeParse(newest.data) : null;
  return parsed?.success ? parsed.data : null;
}

/** The data a session's copy moves and has moved, summed over its copy sets that report it (null when none does). */
export function copyProgress(pairs: MergedSession['session']['pairs']): { done: number; total: number } | null {
  const reporting = pairs.filter((pair) => pair.copyBytes);
  if (reporting.length === 0) return null;
  return reporting.reduce((sum, pair) => ({ done: sum.done + pair.copyBytes!.done, total: sum.total + pair.copyBytes!.total }), { done: 0, total: 0 });
}

/**
 * The live copy (state and per-pair progress by the data it moves,
 * refreshed by the agents' events) and, once Prepared, the verified result,
 * beside what the preflight confirmed at the start said it would copy.
 */
export function FailbackProgress({ entry, phase, preflight = null }: { entry: MergedSession; phase: 'progress' | 'result'; preflight?: FailbackPreflight | null }) {
  const { session } = entry;
  const verify = useVerify();
  const started = useRef(false);
  const back = useSessionAction();
  const forth = useSessionAction();
  // Decided once, when the result shows: the offer stays (with its outcome) while the session turns around.
  const [returnOffered] = useState(() => session.direction === 'h2-h1');
  const [stoppedAtProduction, setStoppedAtProduction] = useState(false);
  // What the failback copied, per copy set: the source's (the production site's) last `session.synced`.
  const sourceView = entry.views.find((view) => view.siteName === sourceSite(session)) ?? entry;
  const synced = lastSynced(useSessionEvents(sourceView.siteId, session.name).data?.events);

  // The result step verifies once: codes compared at both sites while writes may go on.
  useEffect(() => {
    if (phase !== 'result' || started.current || session.state !== 'prepared') return;
    started.current = true;
    verify.mutate({ siteId: entry.siteId, name: session.name });
  }, [phase, session.state, session.name, entry.siteId, verify]);

  if (phase === 'progress') {
    const moved = copyProgress(session.pairs);
    return (
      <Stack mt="md" gap="xs" data-testid="failback-progress">
        <StateBadge state={session.state} health={session.health} />
        <Text size="sm">
          Copying from {sourceSite(session)} to {receivingSites(session).join(', ')}. {session.state === 'prepared' ? 'Done: the sites are in sync. Go on to verify.' : 'This follows the agents as they report.'}
        </Text>
        {moved && session.state !== 'prepared' && (
          <Text size="sm" data-testid="failback-moved">
            {formatSize(moved.done)} of {formatSize(moved.total)} copied (the data the copy moves; unallocated tracks move nothing).
          </Text>
        )}
        <PairTable pairs={session.pairs} h1Site={session.h1Site} h2Site={session.h2Site} direction={session.direction} />
      </Stack>
    );
  }

  const report = verify.data;
  // Multi-primary sessions: every site holding primary volumes is a source again on the way back.
  const originalSource = primarySites(session).join(', ');
  // The site holding a verified copy set's H1 volume: as the verify reports it, else as the session lists it.
  const primaryOf = (each: VerifyPairReport) => each.primarySite ?? primarySiteOf(session, each.pair);
  // The verify per primary site: each copy set's report goes to the site holding its H1 volume.
  const perSite = report && isMultiPrimary(session)
    ? primarySites(session).map((site) => {
        const mine = report.pairs.filter((each) => primaryOf(each) === site);
        return {
          site,
          copySets: mine.length,
          compared: mine.reduce((sum, each) => sum + each.comparedTracks, 0),
          differing: mine.reduce((sum, each) => sum + each.differingCount, 0),
          unverified: mine.reduce((sum, each) => sum + each.unverifiedCount, 0),
        };
      })
    : null;
  // The copy per primary site (multi-primary sessions): each copy set's tracks go to the site holding its H1 volume.
  const copiedPerSite = synced?.pairs && isMultiPrimary(session)
    ? primarySites(session).map((site) => {
        const mine = synced.pairs!.filter((each) => (each.primarySite ?? primarySiteOf(session, each.pair)) === site);
        return { site, copySets: mine.length, tracks: mine.reduce((sum, each) => sum + each.copiedTracks, 0) };
      })
    : null;
  const returnToOriginal = () =>
    back.mutate(
      { siteId: entry.siteId, name: session.name, action: 'recover' },
      { onSuccess: () => forth.mutate({ siteId: entry.siteId, name: session.name, action: 'failback', options: { verifyCodes: true, fullCompare: false } }) },
    );
  return (
    <Stack mt="md" gap="xs" data-testid="failback-result">
      <LastVerifySummary session={session} />
      {synced && (
        <Stack gap={2} data-testid="failback-copied">
          <Text size="sm" data-testid="copied-summary">
            The failback copied {synced.copiedTracks.toLocaleString('en-US')} track{synced.copiedTracks === 1 ? '' : 's'} ({formatSize(synced.bytesSent)} sent) from {sourceSite(session)}.
          </Text>
          {preflight && (
            <Text size="sm" c={preflight.tracksToCopy === synced.copiedTracks ? 'dimmed' : 'orange'} data-testid="copied-vs-preflight">
              The preflight confirmed at the start said {preflight.tracksToCopy.toLocaleString('en-US')} track{preflight.tracksToCopy === 1 ? '' : 's'} (
              {formatSize(preflight.bytesToCopy)})
              {preflight.tracksToCopy === synced.copiedTracks
                ? ': as copied.'
                : synced.copiedTracks > preflight.tracksToCopy
                  ? `; ${(synced.copiedTracks - preflight.tracksToCopy).toLocaleString('en-US')} more were copied (written at ${sourceSite(session)} while it started, or copied again because a write changed them meanwhile${synced.recopiedTracks ? `: ${synced.recopiedTracks} recopied` : ''}).`
                  : `; ${(preflight.tracksToCopy - synced.copiedTracks).toLocaleString('en-US')} fewer were copied (they held the same data by then).`}
            </Text>
          )}
          {copiedPerSite?.map((each) => (
            <Text key={each.site} size="sm" data-testid={`copied-site-${each.site}`}>
              to {each.site} ({each.copySets} copy set{each.copySets === 1 ? '' : 's'}): {each.tracks.toLocaleString('en-US')} tracks copied
            </Text>
          ))}
          {synced.pairs?.map((each) => (
            <Text key={each.pair} size="sm" data-testid={`copied-copy-set-${each.h1Volume}`}>
              {each.h1Volume} ⇄ {each.h2Volume}
              {each.primarySite ? `, primary at ${each.primarySite}` : ''}: {each.copiedTracks.toLocaleString('en-US')} tracks copied ({each.bytesSent.toLocaleString('en-US')} bytes)
            </Text>
          ))}
        </Stack>
      )}
      {verify.isPending && (
        <Text size="sm">
          <Loader size="xs" /> Verifying by segment codes…
        </Text>
      )}
      {verify.error && <ProblemAlert error={verify.error} title="Verify did not finish" />}
      {report && (
        <Alert color={report.differingTracks === 0 && report.unverifiedTracks === 0 ? 'green' : 'orange'} title={report.differingTracks === 0 ? (perSite ? `Verified: ${session.h2Site} and ${originalSource} hold the same data` : 'Verified: both sites hold the same data') : 'Differences found'}>
          <Text size="sm" data-testid="verify-summary">
            {report.comparedTracks} tracks compared, {report.differingTracks} differing, {report.unverifiedTracks} unverified (busy with writes)
            {report.resyncStarted ? '; the differing tracks are being copied again.' : '.'}
          </Text>
        </Alert>
      )}
      {perSite && (
        <Stack gap={2} data-testid="verify-per-site">
          {perSite.map((each) => (
            <Text key={each.site} size="sm" data-testid={`verify-site-${each.site}`}>
              {each.site} ({each.copySets} copy set{each.copySets === 1 ? '' : 's'}): {each.compared} tracks compared with {session.h2Site}, {each.differing} differing
              {each.unverified > 0 ? `, ${each.unverified} unverified` : ''}
            </Text>
          ))}
        </Stack>
      )}
      {report && report.pairs.some((each) => each.primarySite) && (
        <Stack gap={2} data-testid="verify-per-copy-set">
          {report.pairs.map((each) => (
            <Text key={each.pair} size="sm" data-testid={`verify-copy-set-${each.h1Volume}`}>
              {each.h1Volume} ⇄ {each.h2Volume}, primary at {primaryOf(each)}: {each.comparedTracks} compared, {each.differingCount} differing
              {each.unverifiedCount > 0 ? `, ${each.unverifiedCount} unverified` : ''}
            </Text>
          ))}
        </Stack>
      )}
      {report && returnOffered && (
        <Stack gap={4}>
          <Text size="sm">
            Production now runs at {session.h2Site}. To return to the original direction ({originalSource} → {session.h2Site}), stop the applications at{' '}
            {session.h2Site}: this fails over to {originalSource} (its volumes become writable) and fails back from there, copying only what differs.
          </Text>
          {(back.error || forth.error) && <ProblemAlert error={back.error ?? forth.error} title="The way back did not complete" />}
          <Checkbox
            label={`The applications at ${session.h2Site} are stopped`}
            checked={stoppedAtProduction}
            onChange={(event) => setStoppedAtProduction(event.currentTarget.checked)}
          />
          <div>
            <Button color="grape" variant="light" loading={back.isPending || forth.isPending} disabled={forth.isSuccess || !stoppedAtProduction} onClick={returnToOriginal}>
              Return to {originalSource} → {session.h2Site}
            </Button>
          </div>
          {forth.isSuccess && (
            <Text size="sm" c="green">
              Returning: {originalSource} is the source again; what changed there is copied to {session.h2Site}, then every write is mirrored.
            </Text>
          )}
          {forth.isSuccess && <StateBadge state={session.state} health={session.health} testId="return-state" />}
        </Stack>
      )}
    </Stack>
  );
}
