import { Alert, Button, Group, List, Loader, Modal, NativeSelect, Stack, Stepper, Text } from '@mantine/core';
import { roleNeeded, type FlashPairRequest, type FlashSessionInfo } from '@tandem/contract';
import { useMemo, useState } from 'react';
import { formatSize } from '../../../lib/format.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useConnectedSites } from '../../sessions/hooks/use-sessions.ts';
import { siteAccess } from '../../sites/hooks/site-access.ts';
import { useVolumes } from '../../volumes/hooks/use-volumes.ts';
import {
  defaultDraft,
  draftProblems,
  establishRequest,
  overwriteWarning,
  sourceChoices,
  sourceRefusal,
  targetChoices,
  volumeFlashRoles,
  type FlashDraft,
} from '../hooks/flash-model.ts';
import { useFlashUi } from '../hooks/flash-ui-store.ts';
import { useEstablishFlash, useFlashSessions, useMirrorUse } from '../hooks/use-flash.ts';
import { FlashOptionsForm } from './FlashOptionsForm.tsx';
import { FlashPairTrackMap } from './FlashPairTrackMap.tsx';
import { FlashSessionView } from './FlashSessionView.tsx';
import { FlashTargetPicker, volumeLabel } from './FlashTargetPicker.tsx';

const progressStep = 4;

/**
 * Flash copy: source -> target (compatible volumes only, with a warning
 * naming the target) -> options -> review -> establish, then the live
 * background copy with its actions.
 */
export function FlashCopyWizard() {
  const { startSiteId, startSource, closeWizard } = useFlashUi();
  const sites = useConnectedSites();
  const [chosenSite, setChosenSite] = useState<string | null>(startSiteId);
  // A flash copy is established at its site: sites where this console's role cannot are shown, not offered.
  const refusal = (each: (typeof sites)[number]) => siteAccess(each).reason('POST /v1/flash-sessions');
  const siteId = chosenSite ?? (sites.find((each) => refusal(each) === null) ?? sites[0])?.id ?? null;
  const site = sites.find((each) => each.id === siteId);
  const [step, setStep] = useState(startSource ? 1 : 0);
  const [source, setSource] = useState(startSource ?? '');
  const [target, setTarget] = useState('');
  const [extra, setExtra] = useState<FlashPairRequest[]>([]);
  const [draft, setDraft] = useState<FlashDraft>(defaultDraft);
  const [established, setEstablished] = useState<FlashSessionInfo | null>(null);

  const volumes = useVolumes(siteId ?? '-', siteId !== null);
  const flashSessions = useFlashSessions(siteId);
  const mirror = useMirrorUse(siteId);
  const establish = useEstablishFlash();
  const roles = useMemo(() => volumeFlashRoles(flashSessions.data ?? []), [flashSessions.data]);
  const allVolumes = volumes.data?.volumes ?? [];
  const sources = sourceChoices(allVolumes, roles, []);
  const notSources = allVolumes.flatMap((volume) => {
    const reason = sourceRefusal(volume, roles);
    return reason ? [`${volume.name} (${reason})`] : [];
  });
  const sourceVolume = sources.find((volume) => volume.name === source);
  const chosenVolume = allVolumes.find((volume) => volume.name === source);
  const refusedSource = chosenVolume ? sourceRefusal(chosenVolume, roles) : null;
  const choices = targetChoices(sourceVolume, allVolumes, roles, mirror, extra);
  const targetOk = choices.offered.some((volume) => volume.name === target);
  const group: FlashPairRequest[] = sourceVolume && targetOk ? [{ source, target }, ...extra] : extra;
  const problems = draftProblems({ ...draft, pairs: group });
  const live = established ? (flashSessions.data?.find((session) => session.name === established.name) ?? established) : null;

  const canNext = [Boolean(site && sourceVolume && refusal(site) === null), targetOk, !problems.name && !problems.rate, false][step] ?? false;
  const chooseSource = (name: string) => {
    setSource(name);
    setTarget('');
    setExtra(extra.filter((pair) => pair.source !== name && pair.target !== name));
  };
  const submit = () => {
    if (!siteId) return;
    establish.mutate(
      { siteId, request: establishRequest({ ...draft, pairs: group }) },
      {
        onSuccess: (session) => {
          setEstablished(session);
          setStep(progressStep);
        },
      },
    );
  };

  return (
    <Modal opened onClose={closeWizard} title="Flash copy" size="xl" closeOnClickOutside={false}>
      <Stepper active={step} size="xs">
        <Stepper.Step label="Source">
          <Stack mt="md">
            <NativeSelect
              label="Site"
              description="A flash copy stays on one site: source and target belong to the same agent."
              data={sites.map((each) => ({
                value: each.id,
                label: `${each.site} (${each.address})${refusal(each) ? `: needs the ${roleNeeded('POST /v1/flash-sessions')} role` : ''}`,
                disabled: refusal(each) !== null,
              }))}
              error={site ? refusal(site) : null}
              value={siteId ?? ''}
              onChange={(event) => {
                setChosenSite(event.currentTarget.value);
                chooseSource('');
                setExtra([]);
              }}
            />
            {volumes.isLoading && <Loader size="sm" />}
            {volumes.error && <ProblemAlert error={volumes.error} title="Volumes could not be read" />}
            <NativeSelect
              label="Source volume"
              description="The point-in-time image of this volume is what the target will hold."
              data={[{ value: '', label: sources.length ? 'choose a volume' : 'no volume can be a source here' }, ...sources.map((volume) => ({ value: volume.name, label: volumeLabel(volume) }))]}
              value={sourceVolume ? source : ''}
              onChange={(event) => chooseSource(event.currentTarget.value)}
            />
            {notSources.length > 0 && (
              <Text size="xs" c="dimmed" data-testid="flash-source-refused">
                Not offered: {notSources.join('; ')}. A flash target is not flashed further while its relationship exists.
              </Text>
            )}
            {sourceVolume && (roles.get(sourceVolume.name) ?? []).length > 0 && (
              <Text size="sm" c="dimmed">
                {sourceVolume.name} is already in flash copies: {(roles.get(sourceVolume.name) ?? []).map((role) => `${role.role} of ${role.session}`).join(', ')}.
              </Text>
            )}
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Target">
          <Stack mt="md">
            <Text size="sm">
              Targets for <b>{source}</b> at {site?.site}: only volumes of exactly its size ({sourceVolume ? formatSize(sourceVolume.sizeBytes) : '–'}) that are in
              no flash copy yet.
            </Text>
            {!sourceVolume && source && refusedSource && (
              <Text size="sm" c="orange" data-testid="flash-source-not-allowed">
                {source} cannot be a flash source: it is {refusedSource}. Go back and choose another volume.
              </Text>
            )}
            <FlashTargetPicker
              source={sourceVolume}
              choices={choices}
              target={target}
              onChange={setTarget}
              createAt={site ? { siteId: site.id, siteName: site.site, taken: allVolumes.map((volume) => volume.name) } : undefined}
            />
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Options">
          <FlashOptionsForm
            draft={draft}
            onChange={setDraft}
            volumes={allVolumes}
            roles={roles}
            mirror={mirror}
            group={group}
            extra={extra}
            onExtraChange={setExtra}
          />
        </Stepper.Step>
        <Stepper.Step label="Review">
          <Stack mt="md" gap="xs" data-testid="flash-review">
            <Text size="sm">
              Flash copy {draft.name.trim() ? <b>{draft.name.trim()}</b> : 'session (named by the agent)'} at <b>{site?.site}</b>, {group.length} pair
              {group.length === 1 ? '' : 's'} at one point in time:
            </Text>
            <List size="sm">
              {group.map((pair) => (
                <List.Item key={pair.target}>
                  {pair.source} → {pair.target}
                </List.Item>
              ))}
            </List>
            <Text size="sm">
              {draft.backgroundCopy
                ? `Background copy ${draft.rateLimited ? `at up to ${draft.rateMiBps} MiB/s` : 'as fast as the disks go'}`
                : 'No-copy: only tracks overwritten at the source are copied'}
              {draft.incremental ? '; incremental (refresh and reverse copy only changes)' : ''}
              {draft.writeInhibitTarget ? '; hosts cannot write to the targets' : ''}
              {draft.preserveMirror ? '; the mirror secondary flashes too' : ''}.
            </Text>
            <Alert color="red" title={`Replaces all data on ${group.map((pair) => pair.target).join(', ')}`} data-testid="flash-review-warning">
              <List size="sm">
                {group.map((pair) => (
                  <List.Item key={pair.target}>{overwriteWarning(pair)}</List.Item>
                ))}
              </List>
            </Alert>
            {problems.pairs && <Text c="red" size="sm">{problems.pairs}</Text>}
            {establish.error && <ProblemAlert error={establish.error} title="The flash copy was not established; nothing was changed" />}
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Copy">
          {live && siteId && (
            <Stack mt="md" gap="sm" data-testid="flash-progress">
              <Text size="sm">
                Established: the targets hold the point-in-time image now and can be used at once. This follows the agent as it reports.
              </Text>
              <FlashSessionView siteId={siteId} session={live} />
              <FlashPairTrackMap siteId={siteId} session={live} />
            </Stack>
          )}
        </Stepper.Step>
      </Stepper>
      <Group justify="space-between" mt="lg">
        <Button variant="default" onClick={closeWizard}>
          {step === progressStep ? 'Close' : 'Cancel'}
        </Button>
        <Group gap="xs">
          {step > 0 && step < progressStep && (
            <Button variant="default" onClick={() => setStep(step - 1)}>
              Back
            </Button>
          )}
          {step < 3 && (
            <Button disabled={!canNext} onClick={() => setStep(step + 1)}>
              Next
            </Button>
          )}
          {step === 3 && (
            <Button color="red" loading={establish.isPending} disabled={group.length === 0 || Object.keys(problems).length > 0} onClick={submit}>
              Establish flash copy
            </Button>
          )}
        </Group>
      </Group>
    </Modal>
  );
}
