import { Button, Group, Modal, Stack, Text } from '@mantine/core';
import { parseSize, type VolumeInfo } from '@tandem/contract';
import { useState } from 'react';
import { formatSize } from '../../../lib/format.ts';
import type { VolumeFlashRole } from '../../flash/hooks/flash-model.ts';
import type { VolumeMirrorRole } from '../hooks/volume-dependents.ts';
import { useResizeVolume } from '../hooks/use-volumes.ts';
import { SizeInput } from './SizeInput.tsx';
import { VolumeInUse } from './VolumeInUse.tsx';

/** Grows a volume; what depends on it (copy sets keep one size at both sites) is said before, and a refusal names its dependents with the step first. */
export function ResizeVolumeModal({
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
  const [size, setSize] = useState(formatSize(volume.sizeBytes * 2).replace(' ', '').replace('iB', ''));
  const resize = useResizeVolume(siteId);
  const bytes = parseSize(size);
  return (
    <Modal opened onClose={onClose} title={`Resize ${volume.name}`} size="lg">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (bytes !== undefined) resize.mutate({ name: volume.name, sizeBytes: bytes }, { onSuccess: onClose });
        }}
      >
        <Stack>
          <Text size="sm">Now {formatSize(volume.sizeBytes)}. Volumes only grow.</Text>
          <SizeInput label="New size" value={size} onChange={setSize} />
          <VolumeInUse volume={volume.name} verb="resize" error={resize.error} mirror={mirror} flash={flash} />
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
