import { Button, Group, Modal, NativeSelect, Stack, Text } from '@mantine/core';
import type { AddPairRequest } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { takenVolumes } from '../hooks/copy-sets.ts';
import type { MergedSession } from '../hooks/session-model.ts';
import { useAddPairs, useConnectedSites } from '../hooks/use-sessions.ts';
import { CopySetPicker } from './CopySetPicker.tsx';

/**
 * Adds copy sets to a defined or running session: volumes of matching size at both sites, added at the H1 site.
 * An async session may take copy sets whose primary volume is at another connected site (a multi-primary session).
 */
export function AddCopySetModal({ entry, onClose }: { entry: MergedSession; onClose: () => void }) {
  const { session } = entry;
  const sites = useConnectedSites();
  const h1 = sites.find((site) => site.site === session.h1Site);
  const h2 = sites.find((site) => site.site === session.h2Site);
  const [pairs, setPairs] = useState<AddPairRequest[]>([]);
  // Async sessions: the site holding the primary volumes (the H1 site, or another primary agent paired with it).
  const [primarySite, setPrimarySite] = useState(session.h1Site);
  const primaryChoices = session.type === 'async' ? sites.filter((site) => site.site !== session.h2Site).map((site) => site.site) : [];
  const primary = sites.find((site) => site.site === primarySite);
  const elsewhere = primarySite !== session.h1Site;
  const taken = takenVolumes(session);
  const takenHere = {
    h1: session.pairs.filter((pair) => (pair.primarySite ?? session.h1Site) === primarySite).map((pair) => pair.h1Volume),
    h2: taken.h2,
  };
  const add = useAddPairs();
  const running = session.state !== 'defined';
  return (
    <Modal opened onClose={onClose} title={`Add copy sets to ${session.name}`} size="xl">
      <Stack gap="xs">
        {primaryChoices.length > 1 && (
          <NativeSelect
            label="Primary site"
            description={`Where the primary volumes are; copy sets at another site than ${session.h1Site} join the session's consistency groups from that site's agent`}
            data={primaryChoices}
            value={primarySite}
            onChange={(event) => {
              setPrimarySite(event.currentTarget.value);
              setPairs([]);
            }}
          />
        )}
        {!h1 || !h2 || !primary ? (
          <Text size="sm" c="orange">
            Both sites must be connected to add a copy set ({primarySite} and {session.h2Site}).
          </Text>
        ) : (
          <CopySetPicker key={primarySite} h1={primary} h2={h2} pairs={pairs} onChange={setPairs} taken={takenHere} />
        )}
        <Text size="sm" c="dimmed" data-testid="add-copy-set-consequence">
          {running
            ? `Each copy set added starts copying at once: every allocated track of the ${primarySite} volume is copied to ${session.h2Site}, whose volume is overwritten and stays read-only for hosts. The other copy sets keep mirroring.`
            : 'The copy sets are copied when the session starts.'}
        </Text>
        {add.error && <ProblemAlert error={add.error} title="A copy set was not added" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button
            disabled={pairs.length === 0 || !h1}
            loading={add.isPending}
            onClick={() =>
              h1 &&
              add.mutate(
                { siteId: h1.id, name: session.name, pairs: elsewhere ? pairs.map((pair) => ({ ...pair, primaryAgent: primarySite })) : pairs },
                { onSuccess: onClose },
              )
            }
          >
            {pairs.length > 1 ? `Add ${pairs.length} copy sets to ${session.name}` : `Add to ${session.name}`}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
