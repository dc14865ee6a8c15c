import { Badge, Tooltip } from '@mantine/core';
import type { SiteConnection } from '../../../../../main/src/shared/console-api.ts';

const colors: Record<SiteConnection['state'], string> = {
  connected: 'green',
  connecting: 'blue',
  reconnecting: 'orange',
  offline: 'gray',
};

/** The site's connection state, with the last problem and the next attempt on hover. */
export function ConnectionBadge({ connection }: { connection: SiteConnection }) {
  const detail = [
    connection.lastProblem ? `${connection.lastProblem.problem}: ${connection.lastProblem.message}` : null,
    connection.nextAttemptAt ? `next attempt ${new Date(connection.nextAttemptAt).toLocaleTimeString()}` : null,
  ]
    .filter(Boolean)
    .join(' · ');
  const badge = (
    <Badge color={colors[connection.state]} variant="light" data-testid="connection-state">
      {connection.state}
    </Badge>
  );
  return detail ? <Tooltip label={detail} multiline w={320}>{badge}</Tooltip> : badge;
}
