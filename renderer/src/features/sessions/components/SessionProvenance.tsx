import { Alert, Group, Stack, Text, Tooltip } from '@mantine/core';
import { formatAge, formatClock } from '../../../lib/site-reach.ts';
import { useNow } from '../../../lib/use-now.ts';
import type { MergedSession } from '../hooks/session-model.ts';
import { lastKnownText, peerClockText, peerText, stateFromText, type SessionTrust } from '../hooks/session-trust.ts';

/**
 * Where the state on a session card comes from and how old it is ("from
 * beta, 3 s ago"), which site executed it; a view only last known turned
 * into "unknown since T (last known …)"; the other agents of the session as
 * the reporting one sees them (reachable, or unreachable since when).
 */
export function SessionProvenance({ entry, trust }: { entry: MergedSession; trust: SessionTrust }) {
  const now = useNow();
  const { session } = entry;
  const age = formatAge(now - trust.receivedAt);
  const observed = `${trust.from}'s agent composed this view at ${formatClock(trust.observedAt)} (its clock)`;
  return (
    <Stack gap={4}>
      {trust.live ? (
        <Group gap="md">
          <Tooltip label={observed} withinPortal>
            <Text size="xs" c="dimmed" data-testid="session-source">
              from {trust.from}, {age} · {stateFromText(session, trust.from)}
            </Text>
          </Tooltip>
          {/* Other agents' clocks as the reporting agent measured them: its times are in its own clock. */}
          {session.peers.map((peer) => {
            const text = peerClockText(peer, trust.from);
            return text ? (
              <Tooltip key={peer.site} label={`measured over the peer link (±${Math.ceil((peer.clock?.rttMs ?? 0) / 2)} ms); times here are in ${trust.from}'s clock: set the hosts' clocks right (NTP)`} withinPortal>
                <Text size="xs" c="orange" fw={600} data-testid={`peer-clock-${peer.site}`}>
                  {text}
                </Text>
              </Tooltip>
            ) : null;
          })}
        </Group>
      ) : (
        <Alert color="yellow" p="xs" title={`Unknown since ${formatClock(trust.unknownSince)}`} data-testid="session-unknown">
          <Text size="sm">
            No site of this session answers the console now ({trust.from}: {trust.reason ?? 'unreachable'}). Last known: {lastKnownText(entry.shown.session)}, from {trust.from} as of{' '}
            {formatClock(trust.observedAt)} ({formatAge(now - trust.receivedAt)}). What follows is that last known view, not the present.
          </Text>
        </Alert>
      )}
      {trust.clockOffsetMs !== null && (
        <Text size="xs" c="orange" data-testid="clock-offset">
          {trust.from}'s clock is about {Math.round(Math.abs(trust.clockOffsetMs) / 1000)} s {trust.clockOffsetMs > 0 ? 'behind' : 'ahead of'} this console's: times it reports are in its
          own clock.
        </Text>
      )}
      {trust.lostViews.map((view) => (
        <Text key={view.siteId} size="sm" c="orange" data-testid={`session-view-unknown-${view.siteName}`}>
          {view.siteName}: unknown since {formatClock(view.reach.unknownSince)} ({view.reach.reason ?? 'unreachable'}); last known {lastKnownText(view.session)}, as of{' '}
          {formatClock(view.session.observedAt)}.
        </Text>
      ))}
      {trust.healthNote && (
        <Text size="xs" c="orange" data-testid="health-note">
          {trust.healthNote}.
        </Text>
      )}
      {[entry.shown, ...entry.views.filter((view) => view !== entry.shown && view.reach.live)].map((view) => {
        const shown = view === entry.shown;
        const peers = shown ? session.peers : view.session.peers;
        if (peers.length === 0) return null;
        const seenAgo = now - view.receivedAt;
        // Times a view holds are its agent's clock: said when that clock is off this console's.
        const viewOffset = view.receivedAt - Date.parse(view.session.observedAt);
        const clockNote = Number.isFinite(viewOffset) && Math.abs(viewOffset) > 5000 ? ` (times in ${view.siteName}'s clock)` : '';
        return (
          <Group key={view.siteId} gap="md" data-testid={shown ? 'session-peers' : `session-peers-from-${view.siteName}`}>
            <Text size="xs" c="dimmed">
              {view.siteName} sees{clockNote}:
            </Text>
            {peers.map((peer) => (
              <Text
                key={peer.site}
                size="xs"
                c={peer.unreachableSince ? 'red' : 'dimmed'}
                fw={peer.unreachableSince ? 600 : undefined}
                data-testid={shown ? `session-peer-${peer.site}` : `session-peer-${peer.site}-from-${view.siteName}`}
              >
                {peerText(peer)}
                {peer.unreachableSince ? ` (${formatAge(Date.parse(view.session.observedAt) - Date.parse(peer.unreachableSince) + seenAgo).replace(' ago', '')})` : ''}
              </Text>
            ))}
          </Group>
        );
      })}
    </Stack>
  );
}
