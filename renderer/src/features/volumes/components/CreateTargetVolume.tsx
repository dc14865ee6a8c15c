import { Button, Group, Stack, Text, TextInput } from '@mantine/core';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { useSiteAccess } from '../../sites/hooks/site-access.ts';
import { VolumeNameSchema } from '@tandem/contract';
import { useState } from 'react';
import { formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useCreateVolume } from '../hooks/use-volumes.ts';

/** `db-copy`, or `db-copy-2`… when that name is taken. */
export function freeName(base: string, taken: string[]): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let index = 2; ; index++) if (!used.has(`${base}-${index}`)) return `${base}-${index}`;
}

/**
 * A wizard's way out when no volume fits: create one of exactly the size
 * needed at the site it must be on (thin: it costs nothing until written),
 * then it is chosen at once.
 */
export function CreateTargetVolume({
  siteId,
  siteName,
  sizeBytes,
  suggestedName,
  taken,
  purpose,
  onCreated,
}: {
  siteId: string;
  siteName: string;
  sizeBytes: number;
  suggestedName: string;
  /** Names already used at the site. */
  taken: string[];
  /** What the volume is for, in words: `the flash target of db`. */
  purpose: string;
  onCreated: (name: string) => void;
}) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(() => freeName(suggestedName, taken));
  const create = useCreateVolume(siteId);
  const reason = useSiteAccess(siteId).reason('POST /v1/volumes');
  const check = VolumeNameSchema.safeParse(name.trim());
  if (!open) {
    return (
      <Group>
        <RoleGated reason={reason}>
          <Button size="xs" variant="light" onClick={() => setOpen(true)}>
            Create a volume of {formatSize(sizeBytes)} at {siteName}…
          </Button>
        </RoleGated>
      </Group>
    );
  }
  return (
    <Stack gap="xs" data-testid="create-target-volume">
      <Text size="sm">
        A new volume at <b>{siteName}</b> of exactly {formatSize(sizeBytes)}, for {purpose}. It is thin: it takes no space until data is written.
      </Text>
      <Group align="flex-end" gap="xs">
        <TextInput
          label="New volume name"
          value={name}
          onChange={(event) => setName(event.currentTarget.value)}
          error={name && !check.success ? check.error.issues[0]?.message : taken.includes(name.trim()) ? 'a volume of that name exists here' : undefined}
          style={{ flex: 1 }}
        />
        <Button
          size="sm"
          loading={create.isPending}
          disabled={!check.success || taken.includes(name.trim())}
          onClick={() => create.mutate({ name: name.trim(), sizeBytes }, { onSuccess: (volume) => onCreated(volume.name) })}
        >
          Create {name.trim() || 'volume'}
        </Button>
        <Button size="sm" variant="default" onClick={() => setOpen(false)}>
          Never mind
        </Button>
      </Group>
      {create.error && <ProblemAlert error={create.error} title="The volume was not created" />}
    </Stack>
  );
}
