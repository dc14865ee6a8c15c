import { Badge, Button, Checkbox, Group, Menu, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useMutation } from '@tanstack/react-query';
import { auditAction, auditResult, auditWho, type AuditEntry } from '@tandem/contract';
import { useState } from 'react';
import { describeError } from '../../../lib/api-client.ts';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { saveReport } from '../../sessions/hooks/save-report.ts';
import { auditFile, useAudit } from '../hooks/use-audit.ts';

const LIMIT = 500;

function params(entry: AuditEntry): string {
  return entry.params === null ? '' : JSON.stringify(entry.params);
}

/**
 * A site's audit trail: every state-changing call its agent answered
 * (newest first), who made it, what, about what and the result; filtered by
 * session, exported as CSV or JSON through the same save path as reports.
 */
export function AuditView({ siteId, siteName }: { siteId: string; siteName: string }) {
  const [session, setSession] = useState('');
  const filter = session.trim();
  const audit = useAudit(siteId, filter, LIMIT);
  const exportAudit = useMutation({
    mutationFn: async (format: 'csv' | 'json') => {
      const list = audit.data ?? (await audit.refetch()).data;
      if (!list) throw audit.error ?? new Error('the audit trail is not loaded');
      return saveReport(auditFile(list, format, filter));
    },
  });
  const [search, setSearch] = useState('');
  const [refusedOnly, setRefusedOnly] = useState(false);
  const all = [...(audit.data?.entries ?? [])].reverse();
  const words = search.trim().toLowerCase().split(/\s+/).filter(Boolean);
  // Searched here, over what the table shows (who, role, action, target, result) and the URL called (its names: the
  // session's, the action's); the session filter asks the agent.
  const entries = all.filter((entry) => {
    if (refusedOnly && entry.status < 400) return false;
    const text = [auditWho(entry), entry.client?.role ?? '', auditAction(entry), entry.url, entry.target ?? '', auditResult(entry), entry.message ?? ''].join(' ').toLowerCase();
    return words.every((word) => text.includes(word));
  });
  return (
    <Stack gap="xs" data-testid="audit-view">
      <Group justify="space-between">
        <Title order={3}>Audit trail at {siteName}</Title>
        <Group gap="xs">
          <TextInput size="xs" placeholder="all sessions" label="Session" value={session} onChange={(event) => setSession(event.currentTarget.value)} aria-label="Filter by session" />
          <TextInput size="xs" placeholder="who, action, result" label="Search" value={search} onChange={(event) => setSearch(event.currentTarget.value)} aria-label="Search the audit trail" />
          <Checkbox size="xs" mt="lg" label="Refused only" checked={refusedOnly} onChange={(event) => setRefusedOnly(event.currentTarget.checked)} />
          <Button size="xs" variant="default" onClick={() => void audit.refetch()} loading={audit.isFetching}>
            Refresh
          </Button>
          <Menu position="bottom-end">
            <Menu.Target>
              <Button size="xs" variant="default" loading={exportAudit.isPending} disabled={!audit.data} aria-label="Export audit trail">
                Export…
              </Button>
            </Menu.Target>
            <Menu.Dropdown>
              <Menu.Item onClick={() => exportAudit.mutate('csv')}>CSV</Menu.Item>
              <Menu.Item onClick={() => exportAudit.mutate('json')}>JSON</Menu.Item>
            </Menu.Dropdown>
          </Menu>
        </Group>
      </Group>
      {exportAudit.error && (
        <Text size="xs" c="red" role="alert">
          Not exported: {describeError(exportAudit.error).message}
        </Text>
      )}
      {audit.error && <ProblemAlert error={audit.error} title="The audit trail could not be loaded" />}
      <Text size="xs" c="dimmed">
        Every call that changed (or tried to change) something at this site, as its agent recorded it: who is the console’s or CLI’s certificate and the
        user it declared. {audit.data?.truncated ? `The newest ${LIMIT} are shown; export holds the same.` : ''}
      </Text>
      {audit.data && all.length === 0 && <Text data-testid="audit-empty">{filter ? `No calls about session ${filter}.` : 'No calls recorded yet.'}</Text>}
      {all.length > 0 && (
        <Text size="xs" c="dimmed" data-testid="audit-shown">
          {entries.length} of {all.length} calls{entries.length === 0 ? ': none matches the search' : ''}
        </Text>
      )}
      {entries.length > 0 && (
        <Table striped withTableBorder fz="xs" data-testid="audit-table">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Time</Table.Th>
              <Table.Th>Who</Table.Th>
              <Table.Th>Action</Table.Th>
              <Table.Th>Target</Table.Th>
              <Table.Th>Result</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {entries.map((entry) => (
              <Table.Tr key={entry.id} data-testid={`audit-row-${entry.id}`} title={params(entry)}>
                <Table.Td>{entry.time}</Table.Td>
                <Table.Td>
                  {auditWho(entry)}
                  {entry.client?.role && (
                    <Badge size="xs" variant="light" ml={4}>
                      {entry.client.role}
                    </Badge>
                  )}
                </Table.Td>
                <Table.Td>{auditAction(entry)}</Table.Td>
                <Table.Td>{entry.target ?? '-'}</Table.Td>
                <Table.Td c={entry.problem ? 'red' : undefined}>
                  {auditResult(entry)}
                  {entry.message ? `: ${entry.message}` : ''}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}
