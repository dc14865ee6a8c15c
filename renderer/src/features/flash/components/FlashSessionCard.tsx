import { Badge, Button, Card, Group, Stack, Title } from '@mantine/core';
import { useState } from 'react';
import type { SiteFlashSession } from '../hooks/use-flash.ts';
import { FlashEventLog } from './FlashEventLog.tsx';
import { FlashPairTrackMap } from './FlashPairTrackMap.tsx';
import { FlashSessionView } from './FlashSessionView.tsx';

/** One flash session on the Sessions screen, with the copied-track map of a pair on request. */
export function FlashSessionCard({ entry }: { entry: SiteFlashSession }) {
  const { session, siteId, siteName } = entry;
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
            {!session.withdrawnAt && (
              <Button size="xs" variant="subtle" onClick={() => setMapOpen((open) => !open)} aria-expanded={mapOpen}>
                {mapOpen ? 'Hide copied tracks' : 'Show copied tracks'}
              </Button>
            )}
            <Button size="xs" variant="subtle" onClick={() => setEventsOpen((open) => !open)} aria-expanded={eventsOpen}>
              {eventsOpen ? 'Hide events' : 'Show events'}
            </Button>
          </Group>
        </Group>
        <FlashSessionView siteId={siteId} session={session} />
        {mapOpen && !session.withdrawnAt && <FlashPairTrackMap siteId={siteId} session={session} />}
        {eventsOpen && <FlashEventLog siteId={siteId} name={session.name} />}
      </Stack>
    </Card>
  );
}
