import { Badge, Button, Group, SimpleGrid, Stack, Text } from '@mantine/core';
import type { FlashSessionInfo } from '@tandem/contract';
import { useState } from 'react';
import { RoleGated, RoleNote } from '../../../components/RoleGated.tsx';
import { formatSeconds, formatTime } from '../../sessions/hooks/session-model.ts';
import { useSiteAccess } from '../../sites/hooks/site-access.ts';
import { availableFlashActions, canChangeRate, formatRate, isFullyCopied, sessionPercent, type FlashActionPlan } from '../hooks/flash-model.ts';
import { FlashActionModal } from './FlashActionModal.tsx';
import { FlashPairTable } from './FlashPairTable.tsx';
import { FlashRateModal } from './FlashRateModal.tsx';
import { FlashStateBadge } from './FlashStateBadge.tsx';

function Fact({ label, value, testId, data }: { label: string; value: string; testId?: string; data?: Record<string, string | number> }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="sm" fw={500} data-testid={testId} {...Object.fromEntries(Object.entries(data ?? {}).map(([key, value]) => [`data-${key}`, value]))}>
        {value}
      </Text>
    </div>
  );
}

function optionWords(session: FlashSessionInfo): string {
  const { options } = session;
  return [
    options.backgroundCopy ? `background copy ${options.rateMiBps === null ? 'at full speed' : `at ${options.rateMiBps} MiB/s`}` : 'no-copy',
    options.incremental && 'incremental',
    options.writeInhibitTarget && 'target write-inhibited',
    options.preserveMirror && 'preserve mirror',
    session.coordinated && 'coordinated with the mirror site',
  ]
    .filter(Boolean)
    .join(' · ');
}

/** A flash session live: state, point in time, copy progress with rate and ETA, per-pair detail and the actions (none when `readOnly`: a last-known view). */
export function FlashSessionView({ siteId, session, readOnly = false }: { siteId: string; session: FlashSessionInfo; readOnly?: boolean }) {
  const [pending, setPending] = useState<FlashActionPlan | null>(null);
  const [rateOpen, setRateOpen] = useState(false);
  const percent = sessionPercent(session);
  const copying = session.state === 'copying' && !isFullyCopied(session);
  const access = useSiteAccess(siteId);
  const actionsReason = access.reason('POST /v1/flash-sessions/:name/refresh');
  return (
    <Stack gap="sm" data-testid={`flash-session-${session.name}`}>
      <Group gap="xs">
        <FlashStateBadge state={session.state} testId="flash-state" />
        {session.withdrawnAt && (
          <Badge color="gray" variant="outline" tt="none" data-testid="flash-withdrawn">
            withdrawn {formatTime(session.withdrawnAt)}
          </Badge>
        )}
        <Text size="sm" c="dimmed">
          {optionWords(session)}
        </Text>
      </Group>
      <SimpleGrid cols={{ base: 2, md: 5 }} spacing="xs">
        <Fact label="Copied" value={`${Math.floor(percent)} %`} testId="flash-percent" data={{ percent: percent.toFixed(2) }} />
        <Fact label="Copy rate" value={copying ? formatRate(session.copyBytesPerSecond) : '–'} testId="flash-rate" />
        <Fact label="Time left" value={copying ? formatSeconds(session.etaSeconds) : isFullyCopied(session) ? 'done' : '–'} testId="flash-eta" />
        <Fact label="Point in time" value={formatTime(session.pointInTime)} testId="flash-point-in-time" />
        <Fact label="Source writes held" value={session.holdMs === null ? '–' : `${session.holdMs.toFixed(session.holdMs < 10 ? 1 : 0)} ms`} />
      </SimpleGrid>
      <FlashPairTable session={session} />
      {!readOnly && actionsReason && (
        <RoleNote>{`Flash copy actions (refresh, reverse, withdraw, copy rate) are not offered. ${actionsReason}`}</RoleNote>
      )}
      {!readOnly && !actionsReason && (
        <Group gap="xs">
          {availableFlashActions(session).map((plan) => (
            <RoleGated key={plan.action} reason={plan.action === 'forget' ? access.reason('DELETE /v1/flash-sessions/:name') : null}>
              <Button size="xs" color={plan.color} variant={plan.confirm === 'button' ? 'light' : 'outline'} onClick={() => setPending(plan)}>
                {plan.label}…
              </Button>
            </RoleGated>
          ))}
          {canChangeRate(session) && (
            <Button size="xs" variant="default" onClick={() => setRateOpen(true)}>
              Change rate…
            </Button>
          )}
        </Group>
      )}
      {rateOpen && <FlashRateModal siteId={siteId} session={session} onClose={() => setRateOpen(false)} />}
      {pending && <FlashActionModal siteId={siteId} session={session} plan={pending} onClose={() => setPending(null)} />}
    </Stack>
  );
}
