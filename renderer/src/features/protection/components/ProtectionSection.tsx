import { Alert, Button, Group, Loader, Progress, SimpleGrid, Stack, Text } from '@mantine/core';
import { formatSize, type JournalPoint, type JournalView } from '@tandem/contract';
import { useState, type ReactNode } from 'react';
import { RoleGated, RoleNote } from '../../../components/RoleGated.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useNow } from '../../../lib/use-now.ts';
import { useSiteAccess } from '../../sites/hooks/site-access.ts';
import { useSites } from '../../sites/hooks/use-sites.ts';
import { isNoJournal, pointStep, secondarySite, useJournal, useJournalPoints } from '../hooks/use-journal.ts';
import { BookmarkModal, ImageExports, JournalPolicyModal, OpenImageModal, plural, TurnOffJournalModal } from './JournalModals.tsx';
import { JournalTimeline } from './JournalTimeline.tsx';
import { RecoverProductionWizard, type RecoverPointKind } from './RecoverProductionWizard.tsx';

/** `45 s`, `12 min`, `3.5 h`, `2.1 d`. */
export function formatWindow(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1).replace(/\.0$/, '')} h`;
  return `${(seconds / 86_400).toFixed(1).replace(/\.0$/, '')} d`;
}

type Modal =
  | { kind: 'enable' }
  | { kind: 'settings' }
  | { kind: 'bookmark' }
  | { kind: 'off' }
  | { kind: 'image'; bookmark: string }
  // The journal as it was when the wizard opened: a recover ends it.
  | { kind: 'recover'; view: JournalView; points: JournalPoint[]; initial?: { kind: RecoverPointKind; value: string } };

/** Recover production at a journal point, from the session card: offered while the session may be recovered (its state, a live view). */
export interface RecoverOffer {
  allowed: boolean;
  /** Where production ran until now: the session's H1 site(s). */
  primarySites: string;
  /** Opens the failback wizard for the session (the recover wizard's way on). */
  onFailback?: () => void;
}

/**
 * A session's continuous data protection, at its secondary site (where the
 * journal is): the window covered against the one required, space used of
 * the budget, warnings, a timeline with bookmarks, bookmarks with image
 * access, open images, settings. Mounted only while the card's Protection
 * toggle is open: a page of cards fetches no journals. A secondary the
 * console does not reach shows the journal state as unknown, never numbers
 * from before as current.
 */
export function ProtectionSection({ session, h2Site, viewSiteIds, recover }: { session: string; h2Site: string; viewSiteIds: string[]; recover?: RecoverOffer }) {
  const sites = useSites();
  const site = secondarySite(h2Site, sites.data?.sites ?? [], viewSiteIds);
  const connected = site?.connection.state === 'connected';
  const access = useSiteAccess(site?.id);
  const journal = useJournal(site?.id ?? null, session, connected);
  const points = useJournalPoints(site?.id ?? null, session, pointStep(journal.data?.status.coveredWindowSeconds ?? 0), connected && journal.data !== undefined && !journal.error);
  const [modal, setModal] = useState<Modal | null>(null);
  const now = useNow();
  const target = site ? { siteId: site.id, siteName: site.site, session } : null;
  // Every journal action needs at least the operator role: a monitor sees why instead of dead buttons.
  const noActions = access.reason('POST /v1/sessions/:name/journal/bookmarks');
  // Recover is a session action: the operator role at the secondary, where it runs.
  const recoverReason = access.reason('POST /v1/sessions/:name/actions/:action');
  const openRecover = (initial?: { kind: RecoverPointKind; value: string }) =>
    journal.data && setModal({ kind: 'recover', view: journal.data, points: points.data?.points ?? [], initial });
  // Offered once the points are listed (the wizard picks from them) and there is a point to go back to.
  const offerRecover = Boolean(recover?.allowed) && !noActions && (journal.data?.status.pointCount ?? 0) > 0 && points.data !== undefined;
  const adminReason = (route: 'PUT /v1/sessions/:name/journal' | 'DELETE /v1/sessions/:name/journal') => access.reason(route);

  let body;
  if (sites.isPending) body = <Loader size="sm" />;
  else if (!site || !target) {
    body = (
      <Text size="sm" c="dimmed" data-testid="protection-unknown">
        Journal state unknown: the journal is kept at {h2Site}, the session&apos;s secondary site, and this console is not paired with it.
      </Text>
    );
  } else if (!connected) {
    body = (
      <Text size="sm" c="orange" data-testid="protection-unknown">
        Journal state unknown: the console does not reach {site.site} (the session&apos;s secondary, where the journal is) now
        {site.connection.lastProblem ? `: ${site.connection.lastProblem.message}` : ''}.
      </Text>
    );
  } else if (journal.error && isNoJournal(journal.error)) {
    body = (
      <Stack gap="xs" data-testid="protection-none">
        <Text size="sm">No journal: only the newest consistent image is kept at {site.site}.</Text>
        {!noActions && (
          <Group>
            <RoleGated reason={adminReason('PUT /v1/sessions/:name/journal')}>
              <Button size="xs" variant="light" onClick={() => setModal({ kind: 'enable' })}>
                Protect with a journal…
              </Button>
            </RoleGated>
          </Group>
        )}
      </Stack>
    );
  } else if (journal.error) {
    // Whatever was shown before is not current any more: the state is unknown, with the reason.
    body = (
      <Stack gap="xs" data-testid="protection-unknown">
        <Text size="sm" c="orange">
          Journal state unknown: {site.site} did not answer for it.
        </Text>
        <ProblemAlert error={journal.error} title="The journal could not be read" />
      </Stack>
    );
  } else if (!journal.data) body = <Loader size="sm" />;
  else {
    body = (
      <JournalDetails
        view={journal.data}
        bookmarks={(points.data?.points ?? []).filter((point) => point.bookmark !== null)}
        points={points.data?.points ?? []}
        now={now}
        siteName={site.site}
        actions={
          noActions ? null : (
            <Group gap="xs">
              <Button size="xs" variant="light" onClick={() => setModal({ kind: 'bookmark' })}>
                Bookmark…
              </Button>
              {offerRecover && (
                <RoleGated reason={recoverReason}>
                  <Button size="xs" variant="outline" color="red" onClick={() => openRecover()} data-testid="recover-production">
                    Recover production…
                  </Button>
                </RoleGated>
              )}
              <RoleGated reason={adminReason('PUT /v1/sessions/:name/journal')}>
                <Button size="xs" variant="subtle" onClick={() => setModal({ kind: 'settings' })}>
                  Journal settings…
                </Button>
              </RoleGated>
              <RoleGated reason={adminReason('DELETE /v1/sessions/:name/journal')}>
                <Button size="xs" variant="subtle" color="red" onClick={() => setModal({ kind: 'off' })}>
                  Turn off…
                </Button>
              </RoleGated>
            </Group>
          )
        }
        onOpenImage={noActions ? null : (bookmark) => setModal({ kind: 'image', bookmark })}
        onRecover={offerRecover && !recoverReason ? (bookmark) => openRecover({ kind: 'bookmark', value: bookmark }) : null}
        target={target}
      />
    );
  }

  return (
    <Stack gap="xs" data-testid="protection-section">
      {noActions && connected && <RoleNote>{`Journal actions (protect, bookmark, image access, settings) are not offered. ${noActions}`}</RoleNote>}
      {body}
      {target && modal?.kind === 'enable' && <JournalPolicyModal target={target} current={null} onClose={() => setModal(null)} />}
      {target && modal?.kind === 'settings' && journal.data && <JournalPolicyModal target={target} current={journal.data} onClose={() => setModal(null)} />}
      {target && modal?.kind === 'bookmark' && <BookmarkModal target={target} onClose={() => setModal(null)} />}
      {target && modal?.kind === 'off' && journal.data && <TurnOffJournalModal target={target} view={journal.data} onClose={() => setModal(null)} />}
      {target && modal?.kind === 'image' && <OpenImageModal target={target} bookmark={modal.bookmark} onClose={() => setModal(null)} />}
      {target && modal?.kind === 'recover' && (
        <RecoverProductionWizard
          target={{ ...target, primarySites: recover?.primarySites ?? 'the primary site' }}
          view={modal.view}
          points={modal.points}
          initial={modal.initial}
          onFailback={
            recover?.onFailback &&
            (() => {
              setModal(null);
              recover.onFailback?.();
            })
          }
          onClose={() => setModal(null)}
        />
      )}
    </Stack>
  );
}

function JournalDetails({
  view,
  points,
  bookmarks,
  now,
  siteName,
  actions,
  onOpenImage,
  onRecover,
  target,
}: {
  view: JournalView;
  points: JournalPoint[];
  bookmarks: JournalPoint[];
  now: number;
  siteName: string;
  actions: ReactNode;
  onOpenImage: ((bookmark: string) => void) | null;
  onRecover: ((bookmark: string) => void) | null;
  target: { siteId: string; siteName: string; session: string };
}) {
  const { status } = view;
  const usedPercent = status.budgetBytes > 0 ? Math.min(100, (status.usedBytes / status.budgetBytes) * 100) : 0;
  const windowShort = status.warnings.some((warning) => warning.code === 'window-short');
  return (
    <Stack gap="xs" data-testid="protection-journal">
      <SimpleGrid cols={2} spacing="xs">
        <div>
          <Text size="xs" c="dimmed">
            Protection window (at {siteName})
          </Text>
          <Text size="sm" fw={500} c={windowShort ? 'orange' : undefined} data-testid="journal-window-covered">
            {formatWindow(status.coveredWindowSeconds)} covered of {formatWindow(status.requiredWindowSeconds)} required
          </Text>
          {status.predictedWindowSeconds !== null && (
            <Text size="xs" c="dimmed" data-testid="journal-window-predicted">
              holds about {formatWindow(status.predictedWindowSeconds)} at the rate so far
            </Text>
          )}
        </div>
        <div>
          <Text size="xs" c="dimmed">
            Journal space
          </Text>
          <Text size="sm" fw={500} data-testid="journal-space-used">
            {formatSize(status.usedBytes)} of {formatSize(status.budgetBytes)} ({Math.round(usedPercent)} %)
          </Text>
          <Progress value={usedPercent} color={usedPercent >= 90 ? 'red' : usedPercent >= 75 ? 'orange' : 'blue'} size="sm" aria-label="journal space used" data-testid="journal-space-bar" />
        </div>
      </SimpleGrid>
      {status.warnings.map((warning) => {
        const color = warning.level === 'severe' ? 'red' : 'orange';
        return (
          <Alert key={warning.code} p="xs" color={color} data-testid={`journal-warning-${warning.code}`} data-color={color}>
            <Text size="sm">{warning.message}</Text>
          </Alert>
        );
      })}
      <JournalTimeline oldest={status.oldestPoint} points={points} now={now} />
      <Text size="xs" c="dimmed">
        {plural(status.pointCount, 'point')}, {plural(status.bookmarkCount, 'bookmark')}{status.newestPoint ? `; newest point ${new Date(status.newestPoint.timeMs).toLocaleString()}` : ''}.
      </Text>
      {actions}
      {bookmarks.length > 0 && (
        <Stack gap={4} data-testid="journal-bookmarks">
          <Text size="xs" fw={600}>
            Bookmarks
          </Text>
          {bookmarks.map((point) => (
            <Group key={`${point.seq}-${point.bookmark}`} gap="xs" data-testid={`bookmark-${point.bookmark}`}>
              <Text size="sm" fw={500}>
                {point.bookmark}
              </Text>
              <Text size="xs" c="dimmed">
                {new Date(point.timeMs).toLocaleString()}
              </Text>
              {onOpenImage && (
                <Button size="compact-xs" variant="subtle" onClick={() => onOpenImage(point.bookmark!)}>
                  Open image…
                </Button>
              )}
              {onRecover && (
                <Button size="compact-xs" variant="subtle" color="red" onClick={() => onRecover(point.bookmark!)}>
                  Recover to here…
                </Button>
              )}
            </Group>
          ))}
        </Stack>
      )}
      {view.images.length > 0 && (
        <Stack gap={4} data-testid="journal-images">
          <Text size="xs" fw={600}>
            Open images
          </Text>
          {view.images.map((image) =>
            onOpenImage ? (
              <ImageExports key={image.id} target={target} image={image} />
            ) : (
              <Text key={image.id} size="sm">
                Image {image.id}: {image.exports.map((each) => each.export).join(', ')}
              </Text>
            ),
          )}
        </Stack>
      )}
    </Stack>
  );
}
