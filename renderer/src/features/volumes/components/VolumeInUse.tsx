import { Alert, Button, Group, Stack, Text } from '@mantine/core';
import { useState } from 'react';
import { useUiStore } from '../../../app/ui-store.ts';
import { describeError } from '../../../lib/api-client.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import type { VolumeFlashRole } from '../../flash/hooks/flash-model.ts';
import { useConnectedSites, useRemovePair } from '../../sessions/hooks/use-sessions.ts';
import { dependentText, refusalDependents, type CopySetDependent, type VolumeMirrorRole } from '../hooks/volume-dependents.ts';

/** States in which the H1 site takes a copy set's removal (the agent refuses the last copy set of a started session: terminate it instead). */
const removableStates = new Set(['defined', 'preparing', 'prepared', 'suspended']);

/** One copy set holding the volume, with the step that frees it: remove it from its session (at the H1 site), or open the session. */
function CopySetStep({ dependent, h1Site, onRemoved }: { dependent: CopySetDependent; h1Site: string | null; onRemoved: (dependent: CopySetDependent) => void }) {
  const sites = useConnectedSites();
  const h1 = h1Site ? sites.find((site) => site.site === h1Site) : undefined;
  const remove = useRemovePair();
  const showSessions = useUiStore((state) => state.showSessions);
  const removable = removableStates.has(dependent.sessionState);
  return (
    <Stack gap={4} data-testid={`dependent-${dependent.session}`}>
      <Text size="sm">
        It is {dependentText(dependent)}.
      </Text>
      <Text size="xs" c="dimmed">
        Removing the copy set stops mirroring {dependent.h1Volume} → {dependent.h2Volume} at both sites; both volumes keep their data, and the session's other copy sets go on.
      </Text>
      <Group gap="xs">
        {removable && (
          <Button
            size="xs"
            color="orange"
            disabled={!h1}
            loading={remove.isPending}
            onClick={() => h1 && remove.mutate({ siteId: h1.id, name: dependent.session, h1Volume: dependent.h1Volume }, { onSuccess: () => onRemoved(dependent) })}
          >
            Remove from session {dependent.session} first
          </Button>
        )}
        <Button size="xs" variant="default" onClick={() => showSessions(true, dependent.session)}>
          Open session {dependent.session}
        </Button>
      </Group>
      {!h1 && removable && (
        <Text size="xs" c="orange">
          {h1Site ?? "The session's H1 site"} must be connected to remove the copy set there.
        </Text>
      )}
      {remove.error && <ProblemAlert error={remove.error} title={`The copy set was not removed from ${dependent.session}`} />}
      {remove.error && describeError(remove.error).problem === 'invalid-state' && (
        <Text size="xs" c="dimmed">
          The last copy set of a started session cannot be removed: open the session and terminate it, or add another copy set first.
        </Text>
      )}
    </Stack>
  );
}

function RemovedNote({ dependent }: { dependent: CopySetDependent }) {
  return (
    <Text size="sm" c="green" data-testid="dependent-removed">
      Removed from session {dependent.session}: {dependent.h1Volume} is no longer mirrored to {dependent.h2Volume}.
    </Text>
  );
}

/**
 * Why a volume may not be deleted or resized, and the step to take first.
 * Before the attempt: the copy sets and flash copies the console knows of.
 * After a refusal: the dependents the agent named (`volume-busy`), each with
 * its step ("Remove from session gold first", or open the session), never
 * just the error.
 */
export function VolumeInUse({
  volume,
  verb,
  error,
  mirror,
  flash,
}: {
  volume: string;
  verb: 'delete' | 'resize';
  error: unknown;
  mirror: VolumeMirrorRole[];
  flash: VolumeFlashRole[];
}) {
  const showSessions = useUiStore((state) => state.showSessions);
  // Copy sets removed from here: said so, even once the volume's roles (refreshed) no longer list them.
  const [removed, setRemoved] = useState<CopySetDependent[]>([]);
  const isRemoved = (dependent: CopySetDependent) => removed.some((each) => each.session === dependent.session && each.h1Volume === dependent.h1Volume);
  const named = refusalDependents(error);
  const h1SiteOf = (session: string) => mirror.find((role) => role.session === session)?.h1Site ?? null;
  const dependents: CopySetDependent[] = (
    named.length > 0
      ? named
      : mirror.map((role): CopySetDependent => ({ kind: 'copy-set', session: role.session, sessionState: role.sessionState, role: role.role, h1Volume: role.h1Volume, h2Volume: role.h2Volume, action: '' }))
  ).filter((dependent) => !isRemoved(dependent));
  const refused = error !== null && error !== undefined;
  const busy = refused && describeError(error).problem === 'volume-busy';
  const removedNotes = removed.map((dependent) => <RemovedNote key={`${dependent.session}/${dependent.h1Volume}`} dependent={dependent} />);
  if (refused && !busy) return <ProblemAlert error={error} title={`The volume was not ${verb === 'delete' ? 'deleted' : 'resized'}`} />;
  if (dependents.length === 0 && flash.length === 0) {
    if (removed.length === 0) return null;
    return (
      <Alert color="green" title="Nothing depends on it any more" data-testid="volume-freed">
        <Stack gap={4}>
          {removedNotes}
          <Text size="sm">You can {verb} {volume} now.</Text>
        </Stack>
      </Alert>
    );
  }
  return (
    <Alert color="orange" title={refused ? `${volume} is in use: the agent refused to ${verb} it` : `${volume} is in use`} data-testid="volume-in-use">
      <Stack gap="sm">
        {refused ? (
          <Text size="sm" data-testid="volume-busy-message" style={{ overflowWrap: 'anywhere' }}>
            {describeError(error).message}
          </Text>
        ) : (
          <Text size="sm">The agent refuses to {verb} it while these depend on it; take the step first.</Text>
        )}
        {removedNotes}
        {dependents.map((dependent) => (
          <CopySetStep
            key={`${dependent.session}/${dependent.role}`}
            dependent={dependent}
            h1Site={h1SiteOf(dependent.session)}
            onRemoved={(each) => setRemoved((list) => [...list, each])}
          />
        ))}
        {flash.map((role) => (
          <Stack key={`${role.session}/${role.role}`} gap={4} data-testid={`flash-dependent-${role.session}`}>
            <Text size="sm">
              It is the flash {role.role} {role.role === 'source' ? `of ${role.other}` : `of ${role.other}`} in flash session {role.session}: withdraw that relationship first.
            </Text>
            <Group>
              <Button size="xs" variant="default" onClick={() => showSessions(true)}>
                Open flash copy {role.session}
              </Button>
            </Group>
          </Stack>
        ))}
        {refused && (
          <Text size="xs" c="dimmed">
            problem code volume-busy
          </Text>
        )}
      </Stack>
    </Alert>
  );
}
