import { Button, Checkbox, Group, SegmentedControl, Stack, Text, TextInput, Title } from '@mantine/core';
import type { VolumeInfo } from '@tandem/contract';
import { useMemo, useState } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { useUiStore } from '../../../app/ui-store.ts';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { siteAccess } from '../../sites/hooks/site-access.ts';
import { formatClock } from '../../../lib/site-reach.ts';
import { AlertSettingsModal } from '../../alerts/components/AlertSettingsModal.tsx';
import { AuditView } from '../../audit/components/AuditView.tsx';
import { FlashWizardHost } from '../../flash/components/FlashWizardHost.tsx';
import { VolumeFlashPanel } from '../../flash/components/VolumeFlashPanel.tsx';
import { useFlashUi } from '../../flash/hooks/flash-ui-store.ts';
import { useVolumeFlashRoles } from '../../flash/hooks/use-flash.ts';
import { ConnectionBadge } from '../../sites/components/ConnectionBadge.tsx';
import { TrackMapPanel } from '../../track-map/components/TrackMapPanel.tsx';
import { filterRows, orderByLineage, type VolumeFilter, type VolumeSort } from '../hooks/lineage.ts';
import { useVolumeMirrorRoles } from '../hooks/use-volume-mirror-roles.ts';
import { useVolumes } from '../hooks/use-volumes.ts';
import { CreateVolumeModal } from './CreateVolumeModal.tsx';
import { DeleteVolumeModal } from './DeleteVolumeModal.tsx';
import { ResizeVolumeModal } from './ResizeVolumeModal.tsx';
import { SnapshotVolumeModal } from './SnapshotVolumeModal.tsx';
import { VolumesTable, type VolumeAction } from './VolumesTable.tsx';

/** One site's volumes and snapshots, their actions, and the selected volume's track map. */
export function VolumesPage({ site }: { site: SiteSummary }) {
  const connected = site.connection.state === 'connected';
  const volumes = useVolumes(site.id, connected);
  const selected = useUiStore((state) => state.selectedVolume);
  const selectVolume = useUiStore((state) => state.selectVolume);
  const [creating, setCreating] = useState(false);
  const [auditOpen, setAuditOpen] = useState(false);
  const [alertSettingsOpen, setAlertSettingsOpen] = useState(false);
  const [action, setAction] = useState<{ kind: VolumeAction; volume: VolumeInfo } | null>(null);
  const flashRoles = useVolumeFlashRoles(site.id, connected);
  const mirrorRoles = useVolumeMirrorRoles(site, connected);
  const openFlashWizard = useFlashUi((state) => state.openWizard);
  const onAction = (kind: VolumeAction, volume: VolumeInfo) => (kind === 'flash' ? openFlashWizard({ siteId: site.id, source: volume.name }) : setAction({ kind, volume }));
  const [sort, setSort] = useState<VolumeSort>({ by: 'created', descending: false });
  const [filter, setFilter] = useState<VolumeFilter>({ query: '', kind: 'all', inUseOnly: false });
  const ordered = useMemo(() => orderByLineage(volumes.data?.volumes ?? [], sort), [volumes.data, sort]);
  const rows = useMemo(
    () => filterRows(ordered, filter, (name) => mirrorRoles.has(name) || flashRoles.has(name)),
    [ordered, filter, mirrorRoles, flashRoles],
  );
  const filtering = filter.query.trim() !== '' || filter.kind !== 'all' || filter.inUseOnly;
  const selectedVolume = volumes.data?.volumes.find((volume) => volume.name === selected) ?? null;
  const access = siteAccess(site);
  const actionReasons = {
    snapshot: access.reason('POST /v1/volumes/:name/snapshots'),
    flash: access.reason('POST /v1/flash-sessions'),
    resize: access.reason('PATCH /v1/volumes/:name'),
    delete: access.reason('DELETE /v1/volumes/:name'),
  };

  return (
    <Stack>
      <Group justify="space-between">
        <Group>
          <Title order={2}>Volumes at {site.site}</Title>
          <ConnectionBadge connection={site.connection} />
        </Group>
        <Group gap="xs">
          <RoleGated reason={access.reason('PUT /v1/alerts/settings')}>
            <Button variant="default" onClick={() => setAlertSettingsOpen(true)} disabled={!connected}>
              Alert settings…
            </Button>
          </RoleGated>
          <Button variant={auditOpen ? 'light' : 'default'} onClick={() => setAuditOpen((open) => !open)} aria-pressed={auditOpen}>
            Audit trail
          </Button>
          <Button variant="default" onClick={() => void volumes.refetch()} disabled={!connected} loading={volumes.isFetching}>
            Refresh
          </Button>
          <RoleGated reason={access.reason('POST /v1/volumes')}>
            <Button onClick={() => setCreating(true)} disabled={!connected}>
              Create volume
            </Button>
          </RoleGated>
        </Group>
      </Group>
      {!connected && (
        <Text c="orange" size="sm" data-testid="volumes-unknown">
          The console is not connected to this site’s agent since {formatClock(site.connection.since)} ({site.connection.lastProblem?.message ?? site.connection.state});{' '}
          {volumes.data
            ? `below is the last known list, as of ${formatClock(new Date(volumes.dataUpdatedAt).toISOString())}: what happened since is unknown.`
            : 'volumes show once it answers.'}
        </Text>
      )}
      {volumes.error && <ProblemAlert error={volumes.error} title="Volumes could not be loaded" />}
      <Text size="xs" c="dimmed">
        Changes show up by themselves, including space used by data written over NBD (within a few seconds).
      </Text>
      {volumes.data && ordered.length === 0 && (
        <Text data-testid="volumes-empty">No volumes yet. Choose “Create volume” to make one; it is thin, so its size costs nothing until data is written.</Text>
      )}
      {ordered.length > 0 && (
        <Group gap="sm" align="center">
          <TextInput
            placeholder="Search by name"
            aria-label="Search volumes by name"
            value={filter.query}
            onChange={(event) => setFilter({ ...filter, query: event.currentTarget.value })}
            w={240}
          />
          <SegmentedControl
            aria-label="Kind"
            value={filter.kind}
            onChange={(kind) => setFilter({ ...filter, kind: kind as VolumeFilter['kind'] })}
            data={[
              { value: 'all', label: 'All' },
              { value: 'volume', label: 'Volumes' },
              { value: 'snapshot', label: 'Snapshots' },
            ]}
          />
          <Checkbox
            label="In a session or flash copy"
            checked={filter.inUseOnly}
            onChange={(event) => setFilter({ ...filter, inUseOnly: event.currentTarget.checked })}
          />
          <Text size="sm" c="dimmed" data-testid="volumes-count">
            {filtering ? `${rows.length} of ${ordered.length} shown` : `${ordered.length} in all`}
          </Text>
        </Group>
      )}
      {ordered.length > 0 && rows.length === 0 && <Text data-testid="volumes-no-match">No volume matches; clear the search or the filters to see them all.</Text>}
      {rows.length > 0 && (
        <VolumesTable
          rows={rows}
          selected={selected}
          onSelect={selectVolume}
          onAction={onAction}
          actionReasons={actionReasons}
          flashRoles={flashRoles}
          mirrorRoles={mirrorRoles}
          sort={sort}
          onSort={setSort}
        />
      )}
      {selectedVolume && <TrackMapPanel siteId={site.id} volume={selectedVolume} />}
      {selectedVolume && flashRoles.has(selectedVolume.name) && <VolumeFlashPanel siteId={site.id} volume={selectedVolume} />}
      {auditOpen && <AuditView siteId={site.id} siteName={site.site} />}
      {alertSettingsOpen && <AlertSettingsModal siteId={site.id} siteName={site.site} onClose={() => setAlertSettingsOpen(false)} />}
      <FlashWizardHost />
      <CreateVolumeModal siteId={site.id} opened={creating} onClose={() => setCreating(false)} />
      {action?.kind === 'resize' && (
        <ResizeVolumeModal
          siteId={site.id}
          volume={action.volume}
          mirror={mirrorRoles.get(action.volume.name)}
          flash={flashRoles.get(action.volume.name)}
          onClose={() => setAction(null)}
        />
      )}
      {action?.kind === 'delete' && (
        <DeleteVolumeModal
          siteId={site.id}
          volume={action.volume}
          mirror={mirrorRoles.get(action.volume.name)}
          flash={flashRoles.get(action.volume.name)}
          onClose={() => setAction(null)}
        />
      )}
      {action?.kind === 'snapshot' && <SnapshotVolumeModal siteId={site.id} volume={action.volume} onClose={() => setAction(null)} />}
    </Stack>
  );
}
