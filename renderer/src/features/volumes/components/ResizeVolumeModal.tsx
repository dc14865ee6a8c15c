import { Button, Group, Modal, Stack, Text } from '@mantine/core';
import { parseSize, type VolumeInfo } from '@tandem/contract';
import { useState } from 'react';
import { formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useResizeVolume } from '../hooks/use-volumes.ts';
import { SizeInput } from './SizeInput.tsx';

export function ResizeVolumeModal({ siteId, volume, onClose }: { siteId: string; volume: VolumeInfo; onClose: () => void }) {
  const [size, setSize] = useState(formatSize(volume.sizeBytes * 2).replace(' ', '').replace('iB', ''));
  const resize = useResizeVolume(siteId);
  const bytes = parseSize(size);
  return (
    <Modal opened onClose={onClose} title={`Resize ${volume.name}`}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (bytes !== undefined) resize.mutate({ name: volume.name, sizeBytes: bytes }, { onSuccess: onClose });
        }}
      >
        <Stack>
          <Text size="sm">Now {formatSize(volume.sizeBytes)}. Volumes only grow.</Text>
          <SizeInput label="New size" value={size} onChange={setSize} />
          {resize.error && <ProblemAlert error={resize.error} title="The volume was not resized" />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={resize.isPending} disabled={bytes === undefined}>
              Resize
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
