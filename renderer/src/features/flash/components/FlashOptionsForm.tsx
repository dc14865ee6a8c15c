import { Checkbox, Divider, Group, NumberInput, Radio, Stack, Text, TextInput } from '@mantine/core';
import type { FlashPairRequest, VolumeInfo } from '@tandem/contract';
import type { FlashDraft, MirrorUse, VolumeFlashRole } from '../hooks/flash-model.ts';
import { draftProblems } from '../hooks/flash-model.ts';
import { FlashGroupPairs } from './FlashGroupPairs.tsx';

/** Background copy and its rate (or no-copy), incremental, write-inhibit, preserve mirror, the session name and more pairs of the group. */
export function FlashOptionsForm({
  draft,
  onChange,
  volumes,
  roles,
  mirror,
  group,
  extra,
  onExtraChange,
}: {
  draft: FlashDraft;
  onChange: (draft: FlashDraft) => void;
  volumes: VolumeInfo[];
  roles: Map<string, VolumeFlashRole[]>;
  mirror: MirrorUse;
  group: FlashPairRequest[];
  extra: FlashPairRequest[];
  onExtraChange: (extra: FlashPairRequest[]) => void;
}) {
  const problems = draftProblems({ ...draft, pairs: group });
  const set = (change: Partial<FlashDraft>) => onChange({ ...draft, ...change });
  const targets = group.map((pair) => pair.target).join(', ');
  const mirrored = group.flatMap((pair) => [pair.source, pair.target]).filter((volume) => mirror.mirroredPrimaries.has(volume));
  return (
    <Stack mt="md" gap="sm">
      <TextInput
        label="Session name"
        description="Optional: the agent names it flash-<n> otherwise."
        value={draft.name}
        onChange={(event) => set({ name: event.currentTarget.value })}
        error={problems.name}
        data-autofocus
      />
      <Checkbox
        label="Background copy: copy every track to the target"
        description="Off (no-copy): only tracks about to be overwritten at the source are copied; the target keeps reading the rest through the source."
        checked={draft.backgroundCopy}
        onChange={(event) => set({ backgroundCopy: event.currentTarget.checked })}
      />
      {draft.backgroundCopy && (
        <Group align="flex-start" ml="xl">
          <Radio.Group value={draft.rateLimited ? 'limited' : 'full'} onChange={(value) => set({ rateLimited: value === 'limited' })} aria-label="Background copy rate">
            <Stack gap={6}>
              <Radio value="full" label="As fast as the disks go" />
              <Radio value="limited" label="Limited, to spare host I/O" />
            </Stack>
          </Radio.Group>
          <NumberInput
            label="Rate (MiB/s)"
            value={draft.rateMiBps}
            onChange={(value) => set({ rateMiBps: value })}
            disabled={!draft.rateLimited}
            min={1}
            max={100_000}
            w={160}
            error={problems.rate}
          />
        </Group>
      )}
      <Checkbox
        label="Incremental: record changes at both sides"
        description="Refresh and reverse restore then copy only the tracks changed since the last point in time."
        checked={draft.incremental}
        onChange={(event) => set({ incremental: event.currentTarget.checked })}
      />
      <Checkbox
        label="Write-inhibit the target"
        description={`Hosts cannot write to ${targets || 'the target'} while the relationship exists.`}
        checked={draft.writeInhibitTarget}
        onChange={(event) => set({ writeInhibitTarget: event.currentTarget.checked })}
      />
      <Checkbox
        label="Preserve mirror"
        description={
          mirrored.length > 0
            ? `${mirrored.map((volume) => `${volume} is mirrored (session ${mirror.mirroredPrimaries.get(volume)})`).join('; ')}. With this, the secondary performs the same flash copy and the pair stays duplex; without, the target's changed tracks are shipped.`
            : 'Only for volumes that are mirrored primaries; none of these is.'
        }
        checked={draft.preserveMirror}
        disabled={mirrored.length === 0 && !draft.preserveMirror}
        onChange={(event) => set({ preserveMirror: event.currentTarget.checked })}
      />
      <Divider label="Consistent group" labelPosition="left" mt="xs" />
      <Text size="sm" c="dimmed">
        All pairs are flashed at one point in time: source writes are held for a moment while the group is established, so a database spread over several
        volumes is copied consistently.
      </Text>
      <FlashGroupPairs volumes={volumes} roles={roles} mirror={mirror} group={group} extra={extra} onChange={onExtraChange} />
    </Stack>
  );
}
