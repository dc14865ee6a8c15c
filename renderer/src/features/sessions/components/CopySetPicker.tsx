import { ActionIcon, Button, Group, Loader, NativeSelect, Stack, Text } from '@mantine/core';
import type { AddPairRequest, VolumeInfo } from '@tandem/contract';
import { useState } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { CreateTargetVolume } from '../../volumes/components/CreateTargetVolume.tsx';
import { useVolumes } from '../../volumes/hooks/use-volumes.ts';

/** Volumes (not snapshots) at each site; an H2 volume qualifies only with exactly the H1 volume's size. */
export function matchingVolumes(h1Volume: VolumeInfo | undefined, h2Volumes: VolumeInfo[], taken: Set<string>): VolumeInfo[] {
  if (!h1Volume) return [];
  return h2Volumes.filter((volume) => volume.kind === 'volume' && volume.sizeBytes === h1Volume.sizeBytes && !taken.has(volume.name));
}

/**
 * Copy sets chosen from the volumes at both sites; `taken` volumes (already mirrored by the session) are not offered.
 * `h1` is the site whose volumes are offered as primaries. In a multi-primary async session that may be another site than
 * the session's H1 site (`controlSite`): the copy sets added then name it as their `primaryAgent`, and `pairs` may hold
 * copy sets of several primary sites, each listed with its own site.
 */
export function CopySetPicker({
  h1,
  h2,
  pairs,
  onChange,
  taken = { h1: [], h2: [] },
  controlSite = h1.site,
}: {
  h1: SiteSummary;
  h2: SiteSummary;
  pairs: AddPairRequest[];
  onChange: (pairs: AddPairRequest[]) => void;
  taken?: { h1: string[]; h2: string[] };
  controlSite?: string;
}) {
  const siteOf = (pair: AddPairRequest) => pair.primaryAgent ?? controlSite;
  const h1Volumes = useVolumes(h1.id);
  const h2Volumes = useVolumes(h2.id);
  const [h1Choice, setH1Choice] = useState('');
  const [h2Choice, setH2Choice] = useState('');
  if (h1Volumes.isLoading || h2Volumes.isLoading) return <Loader mt="md" />;
  if (h1Volumes.error || h2Volumes.error) return <ProblemAlert error={h1Volumes.error ?? h2Volumes.error} title="Volumes could not be read" />;
  const sources = (h1Volumes.data?.volumes ?? []).filter(
    (volume) => volume.kind === 'volume' && !taken.h1.includes(volume.name) && !pairs.some((pair) => siteOf(pair) === h1.site && pair.h1Volume === volume.name),
  );
  const chosenSource = sources.find((volume) => volume.name === h1Choice);
  const targets = matchingVolumes(chosenSource, h2Volumes.data?.volumes ?? [], new Set([...taken.h2, ...pairs.map((pair) => pair.h2Volume)]));

  const add = () => {
    onChange([...pairs, h1.site === controlSite ? { h1Volume: h1Choice, h2Volume: h2Choice } : { h1Volume: h1Choice, h2Volume: h2Choice, primaryAgent: h1.site }]);
    setH1Choice('');
    setH2Choice('');
  };

  return (
    <Stack mt="md">
      {pairs.map((pair) => (
        <Group key={`${siteOf(pair)}:${pair.h1Volume}`} justify="space-between" data-testid={`copy-set-${pair.h1Volume}`}>
          <Text size="sm">
            {siteOf(pair)}:{pair.h1Volume} → {h2.site}:{pair.h2Volume}
          </Text>
          <ActionIcon variant="subtle" color="red" aria-label={`Remove copy set ${pair.h1Volume}`} onClick={() => onChange(pairs.filter((each) => each !== pair))}>
            ✕
          </ActionIcon>
        </Group>
      ))}
      <Group align="flex-end" grow>
        <NativeSelect
          label={`Volume at ${h1.site}`}
          data={[{ value: '', label: sources.length ? 'choose a volume' : 'no volume left' }, ...sources.map((volume) => ({ value: volume.name, label: `${volume.name} (${formatSize(volume.sizeBytes)})` }))]}
          value={h1Choice}
          onChange={(event) => {
            setH1Choice(event.currentTarget.value);
            setH2Choice('');
          }}
        />
        <NativeSelect
          label={`Copy at ${h2.site}`}
          data={[
            { value: '', label: !chosenSource ? 'choose the source first' : targets.length ? 'choose a volume of the same size' : 'no volume of this size' },
            ...targets.map((volume) => ({ value: volume.name, label: `${volume.name} (${formatSize(volume.sizeBytes)})` })),
          ]}
          value={h2Choice}
          onChange={(event) => setH2Choice(event.currentTarget.value)}
          disabled={!chosenSource}
        />
      </Group>
      {chosenSource && targets.length === 0 && (
        <Text size="sm" c="orange">
          {h2.site} has no free volume of exactly {formatSize(chosenSource.sizeBytes)}: create one there.
        </Text>
      )}
      {chosenSource && (
        <CreateTargetVolume
          key={`${h1.site}:${chosenSource.name}`}
          siteId={h2.id}
          siteName={h2.site}
          sizeBytes={chosenSource.sizeBytes}
          suggestedName={`${chosenSource.name}-copy`}
          taken={(h2Volumes.data?.volumes ?? []).map((volume) => volume.name)}
          purpose={`the copy of ${h1.site}:${chosenSource.name}`}
          onCreated={setH2Choice}
        />
      )}
      <Group>
        <Button size="xs" variant="light" disabled={!h1Choice || !h2Choice} onClick={add}>
          Add copy set
        </Button>
      </Group>
    </Stack>
  );
}
