import { Button, Group, Modal, Stack, Text } from '@mantine/core';
import type { PairInfo } from '@tandem/contract';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { removeConsequence } from '../hooks/copy-sets.ts';
import type { MergedSession } from '../hooks/session-model.ts';
import { useConnectedSites, useRemovePair } from '../hooks/use-sessions.ts';

/** Confirms removing one copy set, in words that say what happens; the agent's refusal is shown with its problem code. */
export function RemovePairModal({ entry, pair, onClose }: { entry: MergedSession; pair: PairInfo; onClose: () => void }) {
  const { session } = entry;
  const h1 = useConnectedSites().find((site) => site.site === session.h1Site);
  const remove = useRemovePair();
  return (
    <Modal opened onClose={onClose} title={`Remove ${pair.h1Volume} from ${session.name}?`} size="lg">
      <Stack>
        <Text size="sm" data-testid="remove-consequence">
          {removeConsequence(session, pair)}
        </Text>
        {!h1 && (
          <Text size="sm" c="orange">
            {session.h1Site} (the session's H1 site) must be connected to remove a copy set.
          </Text>
        )}
        {remove.error && <ProblemAlert error={remove.error} title="The copy set was not removed" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button
            color="red"
            disabled={!h1}
            loading={remove.isPending}
            onClick={() => h1 && remove.mutate({ siteId: h1.id, name: session.name, h1Volume: pair.h1Volume }, { onSuccess: onClose })}
          >
            Remove copy set
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
