import { Button, Group, Modal, Stack, Text, TextInput } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useSnapshotVolume } from '../hooks/use-volumes.ts';

function defaultSnapshotName(source: string): string {
  const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  return `${source}.snap-${stamp}`.slice(0, 63);
}

export function SnapshotVolumeModal({ siteId, volume, onClose }: { siteId: string; volume: VolumeInfo; onClose: () => void }) {
  const [name, setName] = useState(() => defaultSnapshotName(volume.name));
  const snapshot = useSnapshotVolume(siteId);
  return (
    <Modal opened onClose={onClose} title={`Snapshot ${volume.name}`}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          snapshot.mutate({ source: volume.name, name: name.trim() }, { onSuccess: onClose });
        }}
      >
        <Stack>
          <Text size="sm">A point-in-time copy made by copying the track table: instant, and no data is copied.</Text>
          <TextInput label="Snapshot name" value={name} onChange={(event) => setName(event.currentTarget.value)} data-autofocus required />
          {snapshot.error && <ProblemAlert error={snapshot.error} title="The snapshot was not taken" />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={snapshot.isPending} disabled={!name.trim()}>
              Take snapshot
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
