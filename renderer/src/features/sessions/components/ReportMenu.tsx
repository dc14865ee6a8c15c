import { Button, Group, Menu, Text } from '@mantine/core';
import { useMutation } from '@tanstack/react-query';
import type { ReportFormat } from '../../../../../main/src/shared/sessions-api.ts';
import { useApi } from '../../../app/api-context.tsx';
import { describeError } from '../../../lib/api-client.ts';
import { sessionsApi } from '../api/sessions-api.ts';
import { saveReport } from '../hooks/save-report.ts';

const formats: { format: ReportFormat; label: string }[] = [
  { format: 'csv', label: 'CSV' },
  { format: 'json', label: 'JSON' },
  { format: 'pdf', label: 'PDF' },
];

/** Export a session or a whole cluster as CSV, JSON or PDF (built by the backend, saved here). */
export function ReportMenu({ siteId, name, kind }: { siteId: string; name: string; kind: 'session' | 'cluster' }) {
  const api = useApi();
  const exportReport = useMutation({
    mutationFn: async (format: ReportFormat) => {
      const file = kind === 'session' ? await sessionsApi.sessionReport(api, siteId, name, format) : await sessionsApi.clusterReport(api, siteId, name, format);
      return saveReport(file);
    },
  });
  return (
    <Group gap={6} wrap="nowrap">
      {exportReport.error && (
        <Text size="xs" c="red" role="alert">
          Not exported: {describeError(exportReport.error).message}
        </Text>
      )}
      <Menu position="bottom-end">
      <Menu.Target>
        <Button size="xs" variant="default" loading={exportReport.isPending} aria-label={`Export ${kind} ${name}`}>
          Export…
        </Button>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Label>Report of {name}</Menu.Label>
        {formats.map(({ format, label }) => (
          <Menu.Item key={format} onClick={() => exportReport.mutate(format)}>
            {label}
          </Menu.Item>
        ))}
      </Menu.Dropdown>
      </Menu>
    </Group>
  );
}
