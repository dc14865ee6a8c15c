import { NativeSelect, Stack } from '@mantine/core';
import type { FlashSessionInfo } from '@tandem/contract';
import { useState } from 'react';
import { FlashTrackMapPanel } from './FlashTrackMapPanel.tsx';

/** The copied-track map of one pair of a session, with a pair picker for a consistent group. */
export function FlashPairTrackMap({ siteId, session }: { siteId: string; session: FlashSessionInfo }) {
  const [pairId, setPairId] = useState<string | null>(null);
  const pair = session.pairs.find((each) => each.id === pairId) ?? session.pairs[0];
  if (!pair) return null;
  return (
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
  );
}
