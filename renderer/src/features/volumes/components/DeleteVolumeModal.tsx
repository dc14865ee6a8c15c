import { Button, Group, Modal, Stack, Text, TextInput } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { useState } from 'react';
import type { VolumeFlashRole } from '../../flash/hooks/flash-model.ts';
import type { VolumeMirrorRole } from '../hooks/volume-dependents.ts';
import { useDeleteVolume } from '../hooks/use-volumes.ts';
import { VolumeInUse } from './VolumeInUse.tsx';

/**
 * Deleting needs the volume's name typed out: there is no undo. What depends
 * on the volume (copy sets, flash copies) is said before, and a refusal
 * names its dependents with the step to take first.
 */
export function DeleteVolumeModal({
  siteId,
  volume,
  mirror = [],
  flash = [],
  onClose,
}: {
  siteId: string;
  volume: VolumeInfo;
  mirror?: VolumeMirrorRole[];
  flash?: VolumeFlashRole[];
  onClose: () => void;
}) {
  const [typed, setTyped] = useState('');
  const remove = useDeleteVolume(siteId);
  return (
    <Modal opened onClose={onClose} title={`Delete ${volume.kind} ${volume.name}?`} size="lg">
      <Stack>
        <Text size="sm">
          The data of <b>{volume.name}</b> is gone for good. Type its name to confirm.
        </Text>
        <VolumeInUse volume={volume.name} verb="delete" error={remove.error} mirror={mirror} flash={flash} />
        <TextInput label="Name" value={typed} onChange={(event) => setTyped(event.currentTarget.value)} data-autofocus />
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
