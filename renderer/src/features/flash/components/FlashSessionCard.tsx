import { Badge, Button, Card, Group, Stack, Text, Title } from '@mantine/core';
import { useState } from 'react';
import { formatAge, formatClock } from '../../../lib/site-reach.ts';
import { useNow } from '../../../lib/use-now.ts';
import type { SiteFlashSession } from '../hooks/use-flash.ts';
import { FlashEventLog } from './FlashEventLog.tsx';
import { FlashPairTrackMap } from './FlashPairTrackMap.tsx';
import { FlashSessionView } from './FlashSessionView.tsx';

/**
 * One flash session on the Sessions screen, with the copied-track map of a
 * pair on request; from an unreachable site, its last known view marked
 * unknown, without actions.
 */
export function FlashSessionCard({ entry }: { entry: SiteFlashSession }) {
  const { session, siteId, siteName, reach } = entry;
  const now = useNow();
  const [mapOpen, setMapOpen] = useState(false);
  const [eventsOpen, setEventsOpen] = useState(false);
  return (
    <Card withBorder padding="md" data-testid={`flash-card-${session.name}`}>
      <Stack gap="sm">
        <Group justify="space-between">
          <Group gap="xs">
            <Title order={4}>{session.name}</Title>
            <Badge variant="light" color="teal">
              flash copy
            </Badge>
            <Badge variant="outline" color="gray" tt="none">
              at {siteName}
            </Badge>
            {session.pairs.length > 1 && (
              <Badge variant="outline" color="gray" tt="none">
                consistent group of {session.pairs.length}
              </Badge>
            )}
          </Group>
          <Group gap={4}>
            {reach.live && !session.withdrawnAt && (
              <Button size="xs" variant="subtle" onClick={() => setMapOpen((open) => !open)} aria-expanded={mapOpen}>
                {mapOpen ? 'Hide copied tracks' : 'Show copied tracks'}
              </Button>
            )}
            {reach.live && (
              <Button size="xs" variant="subtle" onClick={() => setEventsOpen((open) => !open)} aria-expanded={eventsOpen}>
                {eventsOpen ? 'Hide events' : 'Show events'}
              </Button>
            )}
          </Group>
        </Group>
        {reach.live ? (
          <Text size="xs" c="dimmed" data-testid="flash-source">
            from {siteName}, read {formatAge(now - entry.receivedAt)}; kept current by its events
          </Text>
        ) : (
          <Text size="sm" c="orange" fw={500} data-testid="flash-unknown">
            Unknown since {formatClock(reach.unknownSince)} ({siteName}: {reach.reason ?? 'unreachable'}); last known as of {formatClock(new Date(entry.receivedAt).toISOString())}{' '}
            ({formatAge(now - entry.receivedAt)}), shown below.
          </Text>
        )}
        <FlashSessionView siteId={siteId} session={session} readOnly={!reach.live} />
        {reach.live && mapOpen && !session.withdrawnAt && <FlashPairTrackMap siteId={siteId} session={session} />}
        {reach.live && eventsOpen && <FlashEventLog siteId={siteId} name={session.name} />}
      </Stack>
    </Card>
  );
}
