import { Alert, Button, Checkbox, Group, Loader, Modal, NativeSelect, Stack, Stepper, Text } from '@mantine/core';
import type { FailbackOptions } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { primarySites, targetSite, type MergedSession } from '../hooks/session-model.ts';
import { useSessionsUi } from '../hooks/sessions-ui-store.ts';
import { usePreflight, useSessionAction } from '../hooks/use-sessions.ts';
import { FailbackProgress } from './FailbackProgress.tsx';
import { PreflightSummary } from './PreflightSummary.tsx';

const defaultOptions: FailbackOptions = { verifyCodes: true, fullCompare: false };

/**
 * Failback: pick a session in TargetAvailable -> preflight -> options ->
 * confirm -> live progress -> verified result -> offer the way back.
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
  // The production site now (the target of the failed-over session) and where data goes back to.
  const production = entry ? targetSite(entry.session) : '';
  // Multi-primary sessions go back to every site holding primary volumes.
  const original = entry ? primarySites(entry.session).join(', ') : '';

  const canNext = [Boolean(entry && inTargetAvailable), Boolean(firstPreflight.data), true][step] ?? false;

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
            {chosenPreflight.isLoading && <Loader size="sm" />}
            {chosenPreflight.data && <PreflightSummary preflight={chosenPreflight.data} pairs={entry?.session.pairs ?? []} h1Site={entry?.session.h1Site} />}
            {failback.error && <ProblemAlert error={failback.error} title="Failback did not start" />}
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Progress">{entry && <FailbackProgress entry={entry} phase="progress" />}</Stepper.Step>
        <Stepper.Step label="Result">{entry && <FailbackProgress entry={entry} phase="result" />}</Stepper.Step>
      </Stepper>
      <Group justify="space-between" mt="lg">
        <Button variant="default" onClick={step === 0 || step >= 4 ? closeFailback : () => setStep(step - 1)}>
          {step === 0 ? 'Cancel' : step >= 4 ? 'Close' : 'Back'}
        </Button>
        {step < 3 && (
          <Button disabled={!canNext} onClick={() => setStep(step + 1)}>
            Next
          </Button>
        )}
        {step === 3 && entry && (
          <Button
            color="grape"
            loading={failback.isPending}
            onClick={() => failback.mutate({ siteId, name, action: 'failback', options }, { onSuccess: () => setStep(4) })}
          >
            Start failback
          </Button>
        )}
        {step === 4 && entry && (
          <Button disabled={entry.session.state !== 'prepared'} onClick={() => setStep(5)}>
            Verify result
          </Button>
        )}
      </Group>
    </Modal>
  );
}
