import { Alert, NativeSelect, Stack, Text } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { formatSize } from '../../../lib/format.ts';
import { CreateTargetVolume } from '../../volumes/components/CreateTargetVolume.tsx';
import { overwriteWarning, type TargetChoices } from '../hooks/flash-model.ts';

const volumeLabel = (volume: VolumeInfo) => `${volume.name} (${formatSize(volume.sizeBytes)}${volume.allocatedBytes > 0 ? `, ${formatSize(volume.allocatedBytes)} written` : ', empty'})`;

/**
 * The compatible targets of a source, why the others are not offered, the
 * overwrite warning naming the chosen one, and (with `createAt`) a new
 * volume of the source's size at its site, chosen once created.
 */
export function FlashTargetPicker({
  source,
  choices,
  target,
  onChange,
  label = 'Target volume',
  createAt,
}: {
  source: VolumeInfo | undefined;
  choices: TargetChoices;
  target: string;
  onChange: (target: string) => void;
  label?: string;
  createAt?: { siteId: string; siteName: string; taken: string[] };
}) {
  const chosen = choices.offered.find((volume) => volume.name === target);
  return (
    <Stack gap="xs">
      <NativeSelect
        label={label}
        data={[
          { value: '', label: !source ? 'choose the source first' : choices.offered.length ? 'choose a volume of the same size' : 'no compatible volume' },
          ...choices.offered.map((volume) => ({ value: volume.name, label: volumeLabel(volume) })),
        ]}
        value={chosen ? target : ''}
        onChange={(event) => onChange(event.currentTarget.value)}
        disabled={!source}
      />
      {source && choices.offered.length === 0 && (
        <Text size="sm" c="orange" data-testid="flash-no-target">
          No volume here can take a flash copy of {source.name}: a target has exactly its size ({formatSize(source.sizeBytes)}), is writable and is not already a
          copy target. Create one first.
        </Text>
      )}
      {source && createAt && (
        <CreateTargetVolume
          key={source.name}
          siteId={createAt.siteId}
          siteName={createAt.siteName}
          sizeBytes={source.sizeBytes}
          suggestedName={`${source.name}-pit`}
          taken={createAt.taken}
          purpose={`the flash target of ${source.name}`}
          onCreated={onChange}
        />
      )}
      {source && choices.refused.length > 0 && (
        <Text size="xs" c="dimmed" data-testid="flash-target-refused">
          Not offered: {choices.refused.map(({ volume, reason }) => `${volume.name} (${reason})`).join('; ')}.
        </Text>
      )}
      {source && chosen && (
        <Alert color="red" variant="light" title={`The data on ${chosen.name} will be replaced`} data-testid="flash-target-warning">
          <Text size="sm">{overwriteWarning({ source: source.name, target: chosen.name })}</Text>
          {chosen.allocatedBytes > 0 && (
            <Text size="sm" fw={600} mt={4}>
              {chosen.name} holds {formatSize(chosen.allocatedBytes)} of data now; it will be gone.
            </Text>
          )}
        </Alert>
      )}
    </Stack>
  );
}

export { volumeLabel };
