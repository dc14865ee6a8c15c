import { Button, Group, Modal, NativeSelect, Radio, Stack, Stepper, Text, TextInput } from '@mantine/core';
import { SessionNameSchema, type AddPairRequest, type SessionType } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { siteAccess } from '../../sites/hooks/site-access.ts';
import { useConnectedSites, useCreateSession, usePeers } from '../hooks/use-sessions.ts';
import { CopySetPicker } from './CopySetPicker.tsx';
import { SitePairPicker } from './SitePairPicker.tsx';

const types: { value: SessionType; label: string; description: string }[] = [
  { value: 'sync', label: 'Sync', description: 'A write is acknowledged once both sites hold it. No data loss; every write waits for the round trip.' },
  { value: 'semi-sync', label: 'Semi-sync', description: 'Acknowledged once the target received the write; the target repairs its own write failures.' },
  { value: 'async', label: 'Async', description: 'Acknowledged at once; shipped in consistency groups. The target lags by the exposure.' },
  { value: 'snapshot-shipping', label: 'Snapshot shipping', description: 'Periodic: changed regions are conveyed from snapshots.' },
];

/** Create a session: type and name, two paired sites, copy sets of volumes of matching size. */
export function CreateSessionWizard({ onClose }: { onClose: () => void }) {
  const sites = useConnectedSites();
  const [step, setStep] = useState(0);
  const [name, setName] = useState('');
  const [type, setType] = useState<SessionType>('sync');
  // Until the administrator picks, the first two connected sites (the list may still be loading on the first render).
  const [chosenH1, setH1SiteId] = useState<string | null>(null);
  const [chosenH2, setH2SiteId] = useState<string | null>(null);
  // H1 by default: the first site where this console may create a session (it is created there).
  const defaultH1 = sites.find((site) => siteAccess(site).can('POST /v1/sessions')) ?? sites[0];
  const h1SiteId = chosenH1 ?? defaultH1?.id ?? null;
  const h2SiteId = chosenH2 ?? sites.find((site) => site.id !== h1SiteId)?.id ?? null;
  const [paired, setPaired] = useState(false);
  const [pairs, setPairs] = useState<AddPairRequest[]>([]);
  const create = useCreateSession();
  // Async sessions: each copy set's primary volume may be at another connected site paired with H1 (a multi-primary session).
  const [chosenPrimary, setPrimarySite] = useState<string | null>(null);
  const h1Peers = usePeers(type === 'async' ? h1SiteId : null);

  const nameCheck = SessionNameSchema.safeParse(name);
  const h1 = sites.find((site) => site.id === h1SiteId);
  const h2 = sites.find((site) => site.id === h2SiteId);
  const canNext = [nameCheck.success, Boolean(h1 && h2 && paired && siteAccess(h1).can('POST /v1/sessions')), pairs.length > 0, true][step];
  const pairedWithH1 = (site: { id: string; site: string }) => Boolean(h1Peers.data?.some((peer) => peer.agentId === site.id || peer.site === site.site));
  const primaryChoices = type === 'async' && h1 && h2 ? [h1, ...sites.filter((site) => site.id !== h1.id && site.id !== h2.id && pairedWithH1(site))] : [];
  const primary = primaryChoices.find((site) => site.site === chosenPrimary) ?? h1;
  const primaryOf = (pair: AddPairRequest) => pair.primaryAgent ?? h1?.site;
  // A primary site other than H1 must be paired with the secondary too (the agent refuses the copy set otherwise).
  const primaryPeers = usePeers(primary && h1 && primary.id !== h1.id ? primary.id : null);
  const primaryUnpaired = Boolean(primary && h2 && primaryPeers.data && !primaryPeers.data.some((peer) => peer.agentId === h2.id || peer.site === h2.site));
  const reviewSources = [...new Set([h1?.site, ...pairs.map(primaryOf)])];

  const submit = () => {
    if (!h1 || !h2) return;
    create.mutate({ siteId: h1.id, request: { name, type, peer: h2.site }, pairs }, { onSuccess: onClose });
  };

  return (
    <Modal opened onClose={onClose} title="Create a session" size="xl" closeOnClickOutside={false}>
      <Stepper active={step} size="sm">
        <Stepper.Step label="Type">
          <Stack mt="md">
            <TextInput
              label="Session name"
              value={name}
              onChange={(event) => setName(event.currentTarget.value)}
              error={name && !nameCheck.success ? nameCheck.error.issues[0]?.message : undefined}
              data-autofocus
            />
            <Radio.Group
              label="Mirror mode"
              value={type}
              onChange={(value) => {
                setType(value as SessionType);
                // Only async sessions take copy sets whose primary is at another site.
                if (value !== 'async') {
                  setPairs((staged) => staged.filter((pair) => !pair.primaryAgent));
                  setPrimarySite(null);
                }
              }}
            >
              <Stack gap="xs" mt={4}>
                {types.map((option) => (
                  <Radio key={option.value} value={option.value} label={option.label} description={option.description} />
                ))}
              </Stack>
            </Radio.Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Sites">
          <SitePairPicker
            sites={sites}
            h1SiteId={h1SiteId}
            h2SiteId={h2SiteId}
            onChange={(nextH1, nextH2) => {
              setH1SiteId(nextH1);
              setH2SiteId(nextH2);
              setPairs([]);
              setPrimarySite(null);
            }}
            onPaired={setPaired}
          />
        </Stepper.Step>
        <Stepper.Step label="Copy sets">
          {primaryChoices.length > 1 && (
            <NativeSelect
              mt="md"
              label="Primary site"
              description={`Where the primary volumes of the next copy set are: ${h1?.site} or another site paired with it (a multi-primary session; that site must be paired with ${h2?.site} too)`}
              data={primaryChoices.map((site) => site.site)}
              value={primary?.site ?? ''}
              onChange={(event) => setPrimarySite(event.currentTarget.value)}
            />
          )}
          {primaryUnpaired && (
            <Text size="sm" c="orange" mt="xs" data-testid="primary-not-paired">
              {primary?.site} is not paired with {h2?.site}: pair them (Sites) before adding its copy sets, or the agent refuses them.
            </Text>
          )}
          {h1 && h2 && primary && <CopySetPicker key={primary.id} h1={primary} h2={h2} pairs={pairs} onChange={setPairs} controlSite={h1.site} />}
        </Stepper.Step>
        <Stepper.Step label="Review">
          <Stack mt="md" gap="xs" data-testid="create-session-review">
            <Text size="sm">
              Session <b>{name}</b> ({type}) from <b>{reviewSources.join(', ')}</b> (H1, source{reviewSources.length > 1 ? 's' : ''}) to <b>{h2?.site}</b> (H2, target), {pairs.length} copy set
              {pairs.length === 1 ? '' : 's'}:
            </Text>
            {pairs.map((pair) => (
              <Text key={`${primaryOf(pair)}:${pair.h1Volume}`} size="sm" data-testid={`review-copy-set-${pair.h1Volume}`}>
                {primaryOf(pair)}:{pair.h1Volume} → {h2?.site}:{pair.h2Volume}
                {new Set(pairs.map(primaryOf)).size > 1 && (
                  <Text span size="xs" c="dimmed">
                    {' '}
                    (primary site {primaryOf(pair)})
                  </Text>
                )}
              </Text>
            ))}
            <Text size="sm" c="dimmed">
              Creating defines the session; nothing is copied until you start it.
            </Text>
            {create.error && <ProblemAlert error={create.error} title="The session was not created (or not completely)" />}
          </Stack>
        </Stepper.Step>
      </Stepper>
      <Group justify="space-between" mt="lg">
        <Button variant="default" onClick={onClose}>
          Cancel
        </Button>
        <Group gap="xs">
          {step > 0 && (
            <Button variant="default" onClick={() => setStep(step - 1)}>
              Back
            </Button>
          )}
          {step < 3 ? (
            <Button disabled={!canNext} onClick={() => setStep(step + 1)}>
              Next
            </Button>
          ) : (
            <Button loading={create.isPending} onClick={submit}>
              Create session
            </Button>
          )}
        </Group>
      </Group>
    </Modal>
  );
}
