import { Button, Group, Modal, Stack, TextInput } from '@mantine/core';
import { parseSize } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useCreateVolume } from '../hooks/use-volumes.ts';
import { SizeInput } from './SizeInput.tsx';

export function CreateVolumeModal({ siteId, opened, onClose }: { siteId: string; opened: boolean; onClose: () => void }) {
  const [name, setName] = useState('');
  const [size, setSize] = useState('1G');
  const create = useCreateVolume(siteId);
  const close = () => {
    setName('');
    create.reset();
    onClose();
  };
  const bytes = parseSize(size);
  return (
    <Modal opened={opened} onClose={close} title="Create a volume">
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (bytes !== undefined) create.mutate({ name: name.trim(), sizeBytes: bytes }, { onSuccess: close });
        }}
      >
        <Stack>
          <TextInput label="Name" description="also the NBD export name" value={name} onChange={(event) => setName(event.currentTarget.value)} data-autofocus required />
          <SizeInput label="Size" value={size} onChange={setSize} />
          {create.error && <ProblemAlert error={create.error} title="The volume was not created" />}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending} disabled={!name.trim() || bytes === undefined}>
              Create
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
