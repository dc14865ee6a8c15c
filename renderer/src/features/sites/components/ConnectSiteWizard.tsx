import { Button, Code, Group, Modal, NativeSelect, Stack, Stepper, Table, Text, TextInput } from '@mantine/core';
import { RoleSchema, type Role } from '@tandem/contract';
import { useState } from 'react';
import type { ProbeSiteResponse } from '../../../../../main/src/shared/console-api.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useConnectSite, useProbeSite } from '../hooks/use-sites.ts';

/**
 * "Connect to a site": address and pairing token, then the agent's site name
 * and certificate fingerprint for confirmation; nothing is stored until the
 * administrator confirms and the agent accepts the token.
 */
export function ConnectSiteWizard({ opened, onClose }: { opened: boolean; onClose: () => void }) {
  const [step, setStep] = useState(0);
  const [address, setAddress] = useState('');
  const [token, setToken] = useState('');
  const [expected, setExpected] = useState('');
  /** Empty: the role the token was made for. */
  const [role, setRole] = useState<Role | ''>('');
  const [probe, setProbe] = useState<ProbeSiteResponse | null>(null);
  const probing = useProbeSite();
  const connecting = useConnectSite();

  const close = () => {
    setStep(0);
    setAddress('');
    setToken('');
    setExpected('');
    setRole('');
    setProbe(null);
    probing.reset();
    connecting.reset();
    onClose();
  };

  const lookUp = () => {
    probing.mutate(address.trim(), {
      onSuccess: (result) => {
        setProbe(result);
        setStep(1);
      },
    });
  };

  const confirm = () => {
    if (!probe) return;
    connecting.mutate(
      {
        address: probe.address,
        token: token.trim(),
        expectedFingerprint: expected.trim() || probe.certificateFingerprint,
        ...(role ? { role } : {}),
      },
      { onSuccess: () => setStep(2) },
    );
  };

  return (
    <Modal opened={opened} onClose={close} title="Connect to a site" size="lg">
      <Stepper active={step} size="sm">
        <Stepper.Step label="Agent" description="Address and token">
          <Stack mt="md">
            <TextInput
              label="Agent address"
              description="host:port of the agent's control API"
              placeholder="127.0.0.1:7443"
              value={address}
              onChange={(event) => setAddress(event.currentTarget.value)}
              data-autofocus
              required
            />
            <TextInput
              label="Pairing token"
              description="printed by `tandem-agent token --data DIR` on the agent's host; it works once"
              value={token}
              onChange={(event) => setToken(event.currentTarget.value)}
              required
            />
            <NativeSelect
              label="Role"
              description="what this console may do at the site; the agent grants at most the role the token was made for (tandem-agent token --role)"
              data={[
                { value: '', label: 'as the token allows' },
                { value: 'monitor', label: 'monitor: sees everything, changes nothing' },
                { value: 'operator', label: 'operator: also session actions (failover, failback…) and flash copies' },
                { value: 'administrator', label: 'administrator: also volumes, session definitions, pairing' },
              ]}
              value={role}
              onChange={(event) => {
                const chosen = RoleSchema.safeParse(event.currentTarget.value);
                setRole(chosen.success ? chosen.data : '');
              }}
              data-testid="pair-role"
            />
            {probing.error && <ProblemAlert error={probing.error} title="The agent could not be reached" />}
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button onClick={lookUp} loading={probing.isPending} disabled={!address.trim() || !token.trim()}>
                Next
              </Button>
            </Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Confirm" description="Is this the agent?">
          {probe && (
            <Stack mt="md">
              <Text size="sm">Check that this is the agent you mean before the console trusts it.</Text>
              <Table withRowBorders={false} data-testid="probe-result">
                <Table.Tbody>
                  <Table.Tr>
                    <Table.Th w={160}>Site</Table.Th>
                    <Table.Td data-testid="probe-site">{probe.site}</Table.Td>
                  </Table.Tr>
                  <Table.Tr>
                    <Table.Th>Agent</Table.Th>
                    <Table.Td>
                      {probe.agentId} (version {probe.version})
                    </Table.Td>
                  </Table.Tr>
                  <Table.Tr>
                    <Table.Th>Certificate SHA-256</Table.Th>
                    <Table.Td>
                      <Code block data-testid="probe-fingerprint" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
                        {probe.certificateFingerprint}
                      </Code>
                    </Table.Td>
                  </Table.Tr>
                </Table.Tbody>
              </Table>
              <TextInput
                label="Expected fingerprint (optional)"
                description="paste the fingerprint shown on the agent's host to have the console compare it"
                value={expected}
                onChange={(event) => setExpected(event.currentTarget.value)}
              />
              {probe.alreadyConnected && <Text c="orange" size="sm">This agent is already connected.</Text>}
              {connecting.error && <ProblemAlert error={connecting.error} title="The site was not connected" />}
              <Group justify="flex-end">
                <Button variant="default" onClick={close}>
                  Cancel
                </Button>
                <Button variant="default" onClick={() => setStep(0)}>
                  Back
                </Button>
                <Button onClick={confirm} loading={connecting.isPending}>
                  Trust and connect
                </Button>
              </Group>
            </Stack>
          )}
        </Stepper.Step>
        <Stepper.Completed>
          <Stack mt="md">
            <Text data-testid="connect-done">
              Connected to site <b>{connecting.data?.site}</b>
              {connecting.data?.role ? (
                <>
                  {' '}
                  as <b data-testid="connect-role">{connecting.data.role}</b>
                </>
              ) : null}
              .
            </Text>
            <Group justify="flex-end">
              <Button onClick={close}>Done</Button>
            </Group>
          </Stack>
        </Stepper.Completed>
      </Stepper>
    </Modal>
  );
}
