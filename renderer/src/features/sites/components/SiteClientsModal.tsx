import { Badge, Button, Code, Loader, Modal, NativeSelect, Stack, Table, Text } from '@mantine/core';
import { roleAllows, roles, RoleSchema } from '@tandem/contract';
import { useState } from 'react';
import type { SiteSummary } from '../../../../../main/src/shared/console-api.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { formatClock } from '../../../lib/site-reach.ts';
import { useRevokeClient, useSetClientRole, useSiteClients } from '../hooks/use-sites.ts';

/**
 * A site's clients (consoles and the local admin) with their roles, for an
 * administrator: revoke one; a role changes by revoking the console and
 * pairing it again with a token for the new role (the role is signed into
 * its certificate).
 */
export function SiteClientsModal({ site, onClose }: { site: SiteSummary; onClose: () => void }) {
  const clients = useSiteClients(site.id, true);
  const revoke = useRevokeClient(site.id);
  const setRole = useSetClientRole(site.id);
  const [confirming, setConfirming] = useState<string | null>(null);
  const own = site.agent?.caller?.serial.toUpperCase();
  return (
    <Modal opened onClose={onClose} title={`Clients of ${site.site}`} size="xl">
      <Stack gap="sm">
        <Text size="sm">
          Every console (and the agent's local admin) holding a client certificate of {site.site}, with the role it acts as. A console can be narrowed here
          to a lower role than its certificate carries (effective from its next request) or brought back up to it; a higher role needs a new certificate:
          revoke it, then pair it again with a token for that role (<Code>tandem-agent token --role monitor|operator|administrator</Code>).
        </Text>
        {clients.isLoading && <Loader size="sm" />}
        {clients.error && <ProblemAlert error={clients.error} title="The clients could not be read" />}
        {revoke.error && <ProblemAlert error={revoke.error} title="The client was not revoked" />}
        {setRole.error && <ProblemAlert error={setRole.error} title="The role was not changed" />}
        {clients.data && (
          <Table data-testid="site-clients">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th>Paired</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th />
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {clients.data.clients.map((client) => {
                const self = own !== undefined && client.serial.toUpperCase() === own.replace(/^0+/, '');
                return (
                  <Table.Tr key={client.serial} data-testid={`client-row-${client.name}`}>
                    <Table.Td>
                      {client.name}
                      {self && (
                        <Badge ml="xs" size="xs" variant="light" tt="none">
                          this console
                        </Badge>
                      )}
                    </Table.Td>
                    <Table.Td data-testid="client-role">
                      {client.revokedAt || self ? (
                        client.role
                      ) : (
                        <NativeSelect
                          size="xs"
                          aria-label={`Role of ${client.name}`}
                          data={roles.filter((role) => roleAllows(client.certificateRole, role))}
                          value={client.role}
                          disabled={setRole.isPending}
                          onChange={(event) => {
                            const role = RoleSchema.safeParse(event.currentTarget.value);
                            if (role.success) setRole.mutate({ serial: client.serial, role: role.data });
                          }}
                        />
                      )}
                      {client.roleSource === 'narrowed' && (
                        <Text size="xs" c="dimmed">
                          narrowed; its certificate carries {client.certificateRole}
                        </Text>
                      )}
                      {client.roleSource === 'legacy' && (
                        <Text size="xs" c="dimmed">
                          issued before roles: full rights
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>{formatClock(client.pairedAt)}</Table.Td>
                    <Table.Td>{client.revokedAt ? `revoked ${formatClock(client.revokedAt)}` : 'active'}</Table.Td>
                    <Table.Td ta="right">
                      {!client.revokedAt && !self && (
                        confirming === client.serial ? (
                          <Button size="compact-xs" color="red" loading={revoke.isPending} onClick={() => revoke.mutate(client.serial, { onSuccess: () => setConfirming(null) })}>
                            Revoke {client.name} now
                          </Button>
                        ) : (
                          <Button size="compact-xs" variant="subtle" color="red" onClick={() => setConfirming(client.serial)}>
                            Revoke…
                          </Button>
                        )
                      )}
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
        )}
      </Stack>
    </Modal>
  );
}
