import { Badge, Card, Group, Stack, Table, Text, Title } from '@mantine/core';
import { formatAge, formatClock, withClockTimes } from '../../../lib/site-reach.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useNow } from '../../../lib/use-now.ts';
import { StateBadge } from '../../sessions/components/HealthBadge.tsx';
import { formatSeconds } from '../../sessions/hooks/session-model.ts';
import { sessionTrust } from '../../sessions/hooks/session-trust.ts';
import type { LinkEnd, LinkSession, LinkVerdict, SiteLink } from '../hooks/site-links-model.ts';
import { useSiteLinks } from '../hooks/use-site-links.ts';

const verdictLook: Record<LinkVerdict, { color: string; label: string }> = {
  connected: { color: 'green', label: 'link up' },
  connecting: { color: 'orange', label: 'link connecting' },
  down: { color: 'red', label: 'link down' },
  unknown: { color: 'gray', label: 'link unknown' },
};

/** How one end sees the link: live (`connected · best round trip under 1 ms`), or unknown since when, with what it said last. */
function EndText({ end, other, now }: { end: LinkEnd; other: string; now: number }) {
  const peer = end.peer;
  const said = peer
    ? [
        peer.link,
        peer.linkProblem ? peer.linkProblem.message : null,
        peer.clock ? `best round trip ${peer.clock.rttMs < 1 ? 'under 1' : peer.clock.rttMs.toFixed(0)} ms` : null,
        peer.clock && Math.abs(peer.clock.offsetMs) >= 2000 ? `clock ${peer.clock.offsetMs > 0 ? '+' : ''}${(peer.clock.offsetMs / 1000).toFixed(1)} s` : null,
      ]
        .filter(Boolean)
        .join(' · ')
    : null;
  if (!end.known) {
    return (
      <Text size="sm" c="dimmed" data-testid={`link-end-${end.site}`}>
        {end.site}:{' '}
        {end.reach.reason === 'not a site of this console'
          ? 'not connected to this console, its view is unknown'
          : `unknown${end.reach.unknownSince ? ` since ${formatClock(end.reach.unknownSince)} (${formatAge(now - Date.parse(end.reach.unknownSince))})` : ''}${end.reach.reason ? `, ${end.reach.reason}` : ''}`}
      </Text>
    );
  }
  if (!end.reach.live) {
    const since = end.reach.unknownSince;
    return (
      <Text size="sm" c="orange" data-testid={`link-end-${end.site}`}>
        {end.site} sees {other}: unknown{since ? ` since ${formatClock(since)} (${formatAge(now - Date.parse(since))})` : ''}
        {end.reach.reason ? `, ${end.reach.reason}` : ''}
        {said ? `; last known ${said}, as of ${formatClock(new Date(end.receivedAt).toISOString())}` : ''}
      </Text>
    );
  }
  return (
    <Text size="sm" c={peer && peer.link !== 'connected' ? 'red' : undefined} data-testid={`link-end-${end.site}`}>
      {end.site} sees {other}: {said ?? 'not paired (no such peer)'}
    </Text>
  );
}

/** The short columns stay on one line; a long detail from the agent wraps in the State column instead. */
const noWrap = { whiteSpace: 'nowrap' } as const;

function SessionRow({ item, now }: { item: LinkSession; now: number }) {
  const { entry, from, to } = item;
  const { session } = entry;
  const trust = sessionTrust(entry);
  const exposure =
    trust.live || session.exposureSeconds === null ? formatSeconds(session.exposureSeconds) : `at least ${formatSeconds(session.exposureSeconds + Math.max(0, now - trust.receivedAt) / 1000)}`;
  return (
    <Table.Tr data-testid={`link-session-${session.name}`}>
      <Table.Td style={noWrap}>
        <Text size="sm" fw={600}>
          {session.name}
        </Text>
      </Table.Td>
      <Table.Td style={noWrap}>
        {/* Text, not a badge: a badge's label is cut to "SY…" when the State column takes the width. */}
        <Text size="sm" fw={600} c="blue" data-testid="link-session-mode">
          {session.type}
        </Text>
      </Table.Td>
      <Table.Td style={noWrap}>
        <Text size="sm" data-testid="link-session-direction">
          {from} → {to}
        </Text>
        <Text size="xs" c="dimmed">
          {session.direction === 'h1-h2' ? 'H1 → H2' : 'H2 → H1 (after failback)'}
        </Text>
      </Table.Td>
      <Table.Td>
        <StateBadge state={trust.live ? session.state : 'unknown'} health={trust.health} testId="link-session-state" />
        {!trust.live && (
          <Text size="xs" c="orange">
            last known {session.state} from {trust.from}
            {trust.unknownSince ? `, unknown since ${formatClock(trust.unknownSince)} (${formatAge(now - Date.parse(trust.unknownSince))})` : ''}
          </Text>
        )}
        {session.detail && (
          <Text size="xs" c={trust.health === 'severe' ? 'red' : trust.health === 'warning' ? 'orange' : 'dimmed'} data-testid="link-session-detail">
            {withClockTimes(session.detail)}
          </Text>
        )}
        {trust.healthNote && (
          <Text size="xs" c="orange">
            {trust.healthNote}
          </Text>
        )}
      </Table.Td>
      <Table.Td style={noWrap}>
        <Text size="sm">{exposure}</Text>
      </Table.Td>
    </Table.Tr>
  );
}

function LinkCard({ link, now }: { link: SiteLink; now: number }) {
  const look = verdictLook[link.verdict];
  const [first, second] = link.sites;
  return (
    <Card withBorder padding="md" data-testid={`site-link-${first}-${second}`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Text fw={600} size="lg">
            {first} ⇄ {second}
          </Text>
          <Badge color={look.color} variant="filled" data-testid="link-state" data-verdict={link.verdict}>
            {look.label}
          </Badge>
        </Group>
        <EndText end={link.ends[0]} other={second} now={now} />
        <EndText end={link.ends[1]} other={first} now={now} />
        {link.sessions.length === 0 ? (
          <Text size="sm" c="dimmed">
            No session uses this link.
          </Text>
        ) : (
          <Table striped withTableBorder>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Session</Table.Th>
                <Table.Th>Mode</Table.Th>
                <Table.Th>Direction</Table.Th>
                <Table.Th>State</Table.Th>
                <Table.Th>Exposure</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {link.sessions.map((item) => (
                <SessionRow key={`${item.entry.id}/${item.from}/${item.to}`} item={item} now={now} />
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Stack>
    </Card>
  );
}

/** The links between the sites and, on each, the sessions with the direction data flows now, their mode and state. */
export function SiteLinksOverview() {
  const { links, error } = useSiteLinks();
  const now = useNow();
  return (
    <Stack gap="sm" data-testid="site-links">
      <Title order={3}>Links and sessions between sites</Title>
      {error ? <ProblemAlert error={error} title="Links could not be loaded" /> : null}
      {links.length === 0 && !error && (
        <Text size="sm" c="dimmed" data-testid="site-links-empty">
          No site is paired with another yet.
        </Text>
      )}
      {links.map((link) => (
        <LinkCard key={link.key} link={link} now={now} />
      ))}
    </Stack>
  );
}
