import { Button, Group, Modal, Stack, Text, TextInput } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useDeleteVolume } from '../hooks/use-volumes.ts';

/** Deleting needs the volume's name typed out: there is no undo. */
export function DeleteVolumeModal({ siteId, volume, onClose }: { siteId: string; volume: VolumeInfo; onClose: () => void }) {
  const [typed, setTyped] = useState('');
  const remove = useDeleteVolume(siteId);
  return (
    <Modal opened onClose={onClose} title={`Delete ${volume.kind} ${volume.name}?`}>
      <Stack>
        <Text size="sm">
          The data of <b>{volume.name}</b> is gone for good. Type its name to confirm.
        </Text>
        <TextInput label="Name" value={typed} onChange={(event) => setTyped(event.currentTarget.value)} data-autofocus />
        {remove.error && <ProblemAlert error={remove.error} title="The volume was not deleted" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Keep it
          </Button>
          <Button color="red" disabled={typed !== volume.name} loading={remove.isPending} onClick={() => remove.mutate(volume.name, { onSuccess: onClose })}>
            Delete {volume.name}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
