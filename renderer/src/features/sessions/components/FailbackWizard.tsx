import { Alert, Button, Checkbox, Group, Loader, Modal, NativeSelect, Stack, Stepper, Text } from '@mantine/core';
import type { FailbackOptions, FailbackPreflight } from '@tandem/contract';
import { useEffect, useState } from 'react';
import { formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { formatAge, formatClock } from '../../../lib/site-reach.ts';
import { useNow } from '../../../lib/use-now.ts';
import { primarySites, targetSite, type MergedSession } from '../hooks/session-model.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { usePreflight, useSessionAction } from '../hooks/use-sessions.ts';
import { FailbackProgress } from './FailbackProgress.tsx';
import { PreflightSummary } from './PreflightSummary.tsx';

const defaultOptions: FailbackOptions = { verifyCodes: true, fullCompare: false };

/**
 * Copy sets where the production site has written to more tracks than the
 * preflight counted (the session, read after the preflight, says so): the
 * preflight is stale. Host writes raise no event, so this is how the
 * wizard notices them between events.
 */
export function preflightDrift(preflight: FailbackPreflight, preflightAt: number, entry: MergedSession): { pair: string; counted: number; now: number }[] {
  if (entry.shown.receivedAt <= preflightAt) return [];
  return preflight.pairs.flatMap((counted) => {
    const now = entry.session.pairs.find((pair) => pair.id === counted.pair);
    return now && now.targetChangedTracks > counted.targetChangedTracks ? [{ pair: now.h1Volume, counted: counted.targetChangedTracks, now: now.targetChangedTracks }] : [];
  });
}

/** The preflight changed in what it copies. */
function copiesDiffer(a: FailbackPreflight, b: FailbackPreflight): boolean {
  return a.tracksToCopy !== b.tracksToCopy || a.bytesToCopy !== b.bytesToCopy;
}

/** When the preflight was computed and whether it still holds, with a Refresh. */
function PreflightFreshness({
  preflight,
  computedAt,
  site,
  entry,
  refreshing,
  onRefresh,
}: {
  preflight: FailbackPreflight;
  computedAt: number;
  site: string;
  entry: MergedSession;
  refreshing: boolean;
  onRefresh: () => void;
}) {
  const now = useNow();
  const drift = preflightDrift(preflight, computedAt, entry);
  return (
    <Stack gap={4}>
      <Group gap="xs">
        <Text size="xs" c="dimmed" data-testid="preflight-age">
          Computed by {site} at {formatClock(new Date(computedAt).toISOString())} ({formatAge(now - computedAt)}); recomputed on every session event.
        </Text>
        <Button size="compact-xs" variant="light" loading={refreshing} onClick={onRefresh}>
          Refresh
        </Button>
      </Group>
      {drift.length > 0 && (
        <Alert color="orange" p="xs" title="Stale: written to since" data-testid="preflight-stale">
          <Text size="sm">
            {drift.map((each) => `${each.pair}: ${each.now} tracks changed now, ${each.counted} when computed`).join('; ')}. Refresh to see what the failback would copy now.
          </Text>
        </Alert>
      )}
    </Stack>
  );
}

/**
 * Failback: pick a session in TargetAvailable -> preflight (with its age,
 * recomputed on events, marked stale when the production site wrote since)
 * -> options -> confirm (the preflight recomputed, and again right before
 * starting: what the confirm step shows is what the failback copies) ->
 * live progress -> verified result -> offer the way back.
 */
export function FailbackWizard({ sessions }: { sessions: MergedSession[] }) {
  const { failbackSessionId, closeFailback } = useSessionsUi();
  const candidates = sessions.filter((entry) => entry.session.state === 'target-available');
  const [sessionId, setSessionId] = useState<string | null>(failbackSessionId ?? candidates[0]?.id ?? null);
  const [step, setStep] = useState(0);
  const [options, setOptions] = useState<FailbackOptions>(defaultOptions);
  // Once started, the wizard follows the session wherever its state goes.
  const entry = sessions.find((each) => each.id === sessionId) ?? null;
  const name = entry?.session.name ?? '';
  const siteId = entry?.siteId ?? '';
  const inTargetAvailable = entry?.session.state === 'target-available';
  const firstPreflight = usePreflight(siteId, name, defaultOptions, Boolean(entry) && inTargetAvailable && step >= 1 && step < 4);
  const chosenPreflight = usePreflight(siteId, name, options, Boolean(entry) && inTargetAvailable && step >= 2 && step < 4);
  const failback = useSessionAction();
  // What the confirm step showed when Start was pressed, and a change found right before starting.
  const [confirmed, setConfirmed] = useState<FailbackPreflight | null>(null);
  const [changed, setChanged] = useState<{ before: FailbackPreflight; after: FailbackPreflight } | null>(null);
  const [checking, setChecking] = useState(false);
  const refetchChosen = chosenPreflight.refetch;
  // Entering the confirm step computes the preflight again: the numbers confirmed are of now, not of the first look.
  useEffect(() => {
    if (step === 3) void refetchChosen();
  }, [step, refetchChosen]);
  // The production site now (the target of the failed-over session) and where data goes back to.
  const production = entry ? targetSite(entry.session) : '';
  // Multi-primary sessions go back to every site holding primary volumes.
  const original = entry ? primarySites(entry.session).join(', ') : '';

  const canNext = [Boolean(entry && inTargetAvailable), Boolean(firstPreflight.data), true][step] ?? false;
  const cancellable = step < 4;

  const start = async () => {
    if (!entry) return;
    const shown = chosenPreflight.data;
    setChecking(true);
    const fresh = await chosenPreflight.refetch().finally(() => setChecking(false));
    if (!fresh.data) return;
    if (!shown || copiesDiffer(shown, fresh.data)) {
      setChanged(shown ? { before: shown, after: fresh.data } : null);
      return;
    }
    setChanged(null);
    setConfirmed(fresh.data);
    failback.mutate({ siteId, name, action: 'failback', options }, { onSuccess: () => setStep(4) });
  };

  return (
    <Modal opened onClose={closeFailback} title="Failback" size="xl" closeOnClickOutside={false}>
      <Stepper active={step} size="xs">
        <Stepper.Step label="Session">
          <Stack mt="md">
            {candidates.length === 0 && step === 0 && <Text c="dimmed">No session is in Target available (failed over).</Text>}
            <NativeSelect
              label="Session in Target available"
              data={[{ value: '', label: 'choose a session' }, ...candidates.map((each) => ({ value: each.id, label: `${each.session.name} (${each.session.h1Site} ⇄ ${each.session.h2Site})` }))]}
              value={sessionId ?? ''}
              onChange={(event) => setSessionId(event.currentTarget.value || null)}
            />
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Preflight">
          <Stack mt="md" gap="xs">
            <Text size="sm">
              What failback of <b>{name}</b> would copy from {production} back to {original}, with segment codes compared (nothing moves yet):
            </Text>
            {firstPreflight.isLoading && <Loader size="sm" />}
            {firstPreflight.error && <ProblemAlert error={firstPreflight.error} title="The preflight failed" />}
            {firstPreflight.data && entry && (
              <PreflightFreshness
                preflight={firstPreflight.data}
                computedAt={firstPreflight.dataUpdatedAt}
                site={entry.siteName}
                entry={entry}
                refreshing={firstPreflight.isFetching}
                onRefresh={() => void firstPreflight.refetch()}
              />
            )}
            {firstPreflight.data && <PreflightSummary preflight={firstPreflight.data} pairs={entry?.session.pairs ?? []} h1Site={entry?.session.h1Site} />}
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Options">
          <Stack mt="md">
            <Checkbox
              label="Verify by segment codes: copy only tracks whose codes differ"
              checked={options.verifyCodes}
              onChange={(event) => setOptions({ verifyCodes: event.currentTarget.checked, fullCompare: event.currentTarget.checked && options.fullCompare })}
            />
            <Checkbox
              label="Full compare: compare the codes of every track, not only the marked ones (slower; finds differences no bitmap recorded)"
              checked={options.fullCompare}
              disabled={!options.verifyCodes}
              onChange={(event) => setOptions({ ...options, fullCompare: event.currentTarget.checked })}
            />
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Confirm">
          <Stack mt="md" gap="xs">
            <Alert color="orange" title={`Fail back ${name} to ${original}?`}>
              <Text size="sm" data-testid="failback-consequence">
                Failback copies {production}'s changes back to {original} and reverses the direction: {production} becomes the source and {original}'s volumes are
                overwritten where they differ and stay read-only for hosts. Writes at {production} go on and are mirrored.
              </Text>
            </Alert>
            <Text size="sm" fw={600}>
              What the failback copies{options.verifyCodes ? (options.fullCompare ? ' (every track compared by codes)' : ' (marked tracks, compared by codes)') : ' (every marked track, no code compare)'}:
            </Text>
            {chosenPreflight.isLoading && <Loader size="sm" />}
            {chosenPreflight.error && <ProblemAlert error={chosenPreflight.error} title="The preflight failed" />}
            {chosenPreflight.data && entry && (
              <PreflightFreshness
                preflight={chosenPreflight.data}
                computedAt={chosenPreflight.dataUpdatedAt}
                site={entry.siteName}
                entry={entry}
                refreshing={chosenPreflight.isFetching}
                onRefresh={() => void chosenPreflight.refetch()}
              />
            )}
            {changed && (
              <Alert color="orange" title="The numbers changed while you looked" data-testid="preflight-changed">
                <Text size="sm">
                  Computed again just now: {changed.after.tracksToCopy} tracks ({formatSize(changed.after.bytesToCopy)}) instead of {changed.before.tracksToCopy} tracks (
                  {formatSize(changed.before.bytesToCopy)}). Below is what the failback copies now; Start failback again to go on.
                </Text>
              </Alert>
            )}
            {chosenPreflight.data && <PreflightSummary preflight={chosenPreflight.data} pairs={entry?.session.pairs ?? []} h1Site={entry?.session.h1Site} />}
            <Text size="xs" c="dimmed">
              Start computes this again first and starts only if it is unchanged. Writes at {production} after the start are mirrored to {original}, not part of this copy.
            </Text>
            {failback.error && <ProblemAlert error={failback.error} title="Failback did not start" />}
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Progress">{entry && <FailbackProgress entry={entry} phase="progress" />}</Stepper.Step>
        <Stepper.Step label="Result">{entry && <FailbackProgress entry={entry} phase="result" preflight={confirmed} />}</Stepper.Step>
      </Stepper>
      <Group justify="space-between" mt="lg">
        <Button variant="default" onClick={closeFailback}>
          {cancellable ? 'Cancel' : 'Close'}
        </Button>
        <Group gap="xs">
          {step > 0 && step < 4 && (
            <Button variant="default" onClick={() => setStep(step - 1)}>
              Back
            </Button>
          )}
          {step < 3 && (
            <Button disabled={!canNext} onClick={() => setStep(step + 1)}>
              Next
            </Button>
          )}
          {step === 3 && entry && (
            <Button color="grape" loading={failback.isPending || checking} disabled={!chosenPreflight.data} onClick={() => void start()}>
              Start failback
            </Button>
          )}
          {step === 4 && entry && (
            <Button disabled={entry.session.state !== 'prepared'} onClick={() => setStep(5)}>
              Verify result
            </Button>
          )}
        </Group>
      </Group>
    </Modal>
  );
}
