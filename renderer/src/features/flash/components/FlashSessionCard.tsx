import { Badge, Button, Card, Group, NativeSelect, Stack, Title } from '@mantine/core';
import { useState } from 'react';
import type { SiteFlashSession } from '../hooks/use-flash.ts';
import { FlashEventLog } from './FlashEventLog.tsx';
import { FlashSessionView } from './FlashSessionView.tsx';
import { FlashTrackMapPanel } from './FlashTrackMapPanel.tsx';

/** One flash session on the Sessions screen, with the copied-track map of a pair on request. */
export function FlashSessionCard({ entry }: { entry: SiteFlashSession }) {
  const { session, siteId, siteName } = entry;
  const [mapOpen, setMapOpen] = useState(false);
  const [eventsOpen, setEventsOpen] = useState(false);
  const [pairId, setPairId] = useState<string | null>(null);
  const pair = session.pairs.find((each) => each.id === pairId) ?? session.pairs[0];
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
        {mapOpen && pair && !session.withdrawnAt && (
          <Stack gap="xs">
            {session.pairs.length > 1 && (
              <NativeSelect
                label="Pair"
                data={session.pairs.map((each) => ({ value: each.id, label: `${each.source} → ${each.target}` }))}
                value={pair.id}
                onChange={(event) => setPairId(event.currentTarget.value)}
                w={320}
              />
            )}
            <FlashTrackMapPanel siteId={siteId} session={session.name} pair={pair} />
          </Stack>
        )}
        {eventsOpen && <FlashEventLog siteId={siteId} name={session.name} />}
      </Stack>
    </Card>
  );
}
