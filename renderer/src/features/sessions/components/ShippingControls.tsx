import { Button, Group, Modal, NumberInput, Stack, Text } from '@mantine/core';
import { ShipIntervalSecondsSchema } from '@tandem/contract';
import { useState } from 'react';
import { RoleGated } from '../../../components/RoleGated.tsx';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useSiteAccess } from '../../sites/hooks/site-access.ts';
import { formatSeconds, formatTime, type MergedSession } from '../hooks/session-model.ts';
import { useSetShipInterval, useShipNow } from '../hooks/use-sessions.ts';

const shipStates = new Set(['preparing', 'prepared']);

/** Snapshot shipping: the interval in effect, "Change interval…" and "Ship now" (one cycle, committed at the target). */
export function ShippingControls({ entry }: { entry: MergedSession }) {
  const { session } = entry;
  const [changing, setChanging] = useState(false);
  const shipNow = useShipNow();
  const access = useSiteAccess(entry.siteId);
  if (session.type !== 'snapshot-shipping') return null;
  const seconds = session.shipIntervalSeconds ?? null;
  return (
    <Stack gap={4} data-testid="shipping-controls">
      <Group gap="xs">
        <Text size="sm">
          Ships every <b data-testid="ship-interval">{formatSeconds(seconds)}</b>
        </Text>
        <RoleGated reason={access.reason('PATCH /v1/sessions/:name')}>
          <Button size="compact-xs" variant="subtle" onClick={() => setChanging(true)}>
            Change interval…
          </Button>
        </RoleGated>
        <RoleGated reason={access.reason('POST /v1/sessions/:name/ship-now')}>
          <Button
            size="compact-xs"
            variant="light"
            disabled={!shipStates.has(session.state)}
            loading={shipNow.isPending}
            onClick={() => shipNow.mutate({ siteId: entry.siteId, name: session.name })}
          >
            Ship now
          </Button>
        </RoleGated>
      </Group>
      {shipNow.data && (
        <Text size="xs" c="dimmed" data-testid="ship-now-result">
          Cycle {shipNow.data.cycle} committed at {session.direction === 'h1-h2' ? session.h2Site : session.h1Site}: image as of {formatTime(shipNow.data.time)},{' '}
          {shipNow.data.tracks} tracks in {formatSeconds(shipNow.data.durationMs / 1000)}.
        </Text>
      )}
      {shipNow.error && <ProblemAlert error={shipNow.error} title="Ship now did not happen" />}
      {changing && <ShipIntervalModal entry={entry} current={seconds} onClose={() => setChanging(false)} />}
    </Stack>
  );
}

function ShipIntervalModal({ entry, current, onClose }: { entry: MergedSession; current: number | null; onClose: () => void }) {
  const [value, setValue] = useState<number | string>(current ?? 30);
  const change = useSetShipInterval();
  const check = ShipIntervalSecondsSchema.safeParse(typeof value === 'number' ? value : Number.NaN);
  return (
    <Modal opened onClose={onClose} title={`Shipping interval of ${entry.session.name}`}>
      <Stack>
        <NumberInput
          label="Seconds between cycles"
          description="0.1 s to 1 day; both sites take the new interval at once and the next cycle counts from now."
          min={0.1}
          max={86_400}
          decimalScale={1}
          value={value}
          onChange={setValue}
          error={check.success ? undefined : 'between 0.1 and 86400 seconds'}
          data-autofocus
        />
        {change.error && <ProblemAlert error={change.error} title="The interval was not changed" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button
            disabled={!check.success}
            loading={change.isPending}
            onClick={() => check.success && change.mutate({ siteId: entry.siteId, name: entry.session.name, seconds: check.data }, { onSuccess: onClose })}
          >
            Change interval
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
