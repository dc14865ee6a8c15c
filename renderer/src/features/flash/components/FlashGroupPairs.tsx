import { ActionIcon, Button, Group, NativeSelect, Stack, Text } from '@mantine/core';
import type { FlashPairRequest, VolumeInfo } from '@tandem/contract';
import { useState } from 'react';
import { sourceChoices, targetChoices, type MirrorUse, type VolumeFlashRole } from '../hooks/flash-model.ts';
import { FlashTargetPicker, volumeLabel } from './FlashTargetPicker.tsx';

/** More pairs for a consistent group: every pair of the group is flashed at one point in time. */
export function FlashGroupPairs({
  volumes,
  roles,
  mirror,
  group,
  extra,
  onChange,
}: {
  volumes: VolumeInfo[];
  roles: Map<string, VolumeFlashRole[]>;
  mirror: MirrorUse;
  /** Every pair of the group so far (the first one from the earlier steps included). */
  group: FlashPairRequest[];
  /** The pairs added here (removable). */
  extra: FlashPairRequest[];
  onChange: (extra: FlashPairRequest[]) => void;
}) {
  const [adding, setAdding] = useState(false);
  const [source, setSource] = useState('');
  const [target, setTarget] = useState('');
  const sources = sourceChoices(volumes, roles, group);
  const chosenSource = sources.find((volume) => volume.name === source);
  const choices = targetChoices(chosenSource, volumes, roles, mirror, group);
  const add = () => {
    onChange([...extra, { source, target }]);
    setSource('');
    setTarget('');
  };
  return (
    <Stack gap="xs" data-testid="flash-group">
      {group.map((pair, index) => (
        <Group key={pair.target} justify="space-between" data-testid={`flash-group-pair-${pair.target}`}>
          <Text size="sm">
            {index + 1}. {pair.source} → {pair.target}
          </Text>
          {extra.includes(pair) && (
            <ActionIcon variant="subtle" color="red" aria-label={`Remove pair ${pair.source} → ${pair.target}`} onClick={() => onChange(extra.filter((each) => each !== pair))}>
              ✕
            </ActionIcon>
          )}
        </Group>
      ))}
      {!adding && (
        <Group>
          <Button size="xs" variant="default" onClick={() => setAdding(true)}>
            Add another pair…
          </Button>
        </Group>
      )}
      {adding && (
        <Group align="flex-start" grow>
          <NativeSelect
            label="Another source"
            data={[{ value: '', label: sources.length ? 'choose a volume' : 'no volume left' }, ...sources.map((volume) => ({ value: volume.name, label: volumeLabel(volume) }))]}
            value={source}
            onChange={(event) => {
              setSource(event.currentTarget.value);
              setTarget('');
            }}
          />
          <FlashTargetPicker source={chosenSource} choices={choices} target={target} onChange={setTarget} label="Its target" />
        </Group>
      )}
      {adding && (
        <Group>
          <Button size="xs" variant="light" disabled={!chosenSource || !choices.offered.some((volume) => volume.name === target)} onClick={add}>
            Add pair to the group
          </Button>
          <Button size="xs" variant="subtle" onClick={() => setAdding(false)}>
            Done adding
          </Button>
        </Group>
      )}
    </Stack>
  );
}
