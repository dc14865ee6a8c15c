import { Button, Group, Loader, Modal, NumberInput, SegmentedControl, Select, Stack, Text } from '@mantine/core';
import { useEffect, useState } from 'react';
import { SetSessionAlertThresholdsRequestSchema, type SessionAlertThresholdsView, type SetSessionAlertThresholdsRequest } from '@tandem/contract';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useSessionAlertThresholds, useSetSessionAlertThresholds } from '../hooks/use-alerts.ts';

type FieldValue = number | string;
type Fields = { rpoTargetSeconds: FieldValue; linkDownSeconds: FieldValue; backlogPercent: FieldValue; enabled: 'default' | 'on' | 'off' };
const numericFields = ['rpoTargetSeconds', 'linkDownSeconds', 'backlogPercent'] as const;

function fieldsOf(view: SessionAlertThresholdsView): Fields {
  const { own } = view;
  return {
    rpoTargetSeconds: own.rpoTargetSeconds ?? '',
    linkDownSeconds: own.linkDownSeconds ?? '',
    backlogPercent: own.backlogPercent ?? '',
    enabled: own.enabled === null ? 'default' : own.enabled ? 'on' : 'off',
  };
}

/** The request the form stands for: an empty field resets to the site default (null). */
export function thresholdsRequest(fields: Fields): { request: SetSessionAlertThresholdsRequest | null; errors: Partial<Record<keyof Fields, string>> } {
  const raw: Record<string, unknown> = { enabled: fields.enabled === 'default' ? null : fields.enabled === 'on' };
  const errors: Partial<Record<keyof Fields, string>> = {};
  for (const key of numericFields) {
    const value = fields[key];
    if (value === '' || value === null) raw[key] = null;
    else if (typeof value === 'number') raw[key] = value;
    else errors[key] = 'a number, or empty for the site default';
  }
  const parsed = SetSessionAlertThresholdsRequestSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path[0]) as keyof Fields;
      errors[key] ??= issue.message;
    }
  }
  return { request: parsed.success && Object.keys(errors).length === 0 ? parsed.data : null, errors };
}

/**
 * A session's alert thresholds at one site (each agent keeps its own): RPO
 * target, link-down seconds, backlog percent and alerts on/off. Empty fields
 * inherit the site's defaults, shown beside them; values are checked with
 * the contract's schema before they are sent, and the agent's refusal is
 * shown with its problem code.
 */
export function AlertThresholdsModal({ session, sites, onClose }: { session: string; sites: Array<{ siteId: string; siteName: string }>; onClose: () => void }) {
  const [siteId, setSiteId] = useState(sites[0]?.siteId ?? '');
  const view = useSessionAlertThresholds(siteId, session);
  const save = useSetSessionAlertThresholds(siteId, session);
  const [fields, setFields] = useState<Fields | null>(null);
  useEffect(() => {
    if (view.data) setFields(fieldsOf(view.data));
  }, [view.data]);
  const siteName = sites.find((site) => site.siteId === siteId)?.siteName ?? siteId;
  const checked = fields ? thresholdsRequest(fields) : null;
  const effective = view.data?.effective;
  const set = (key: keyof Fields) => (value: FieldValue) => setFields((current) => (current ? { ...current, [key]: value } : current));

  return (
    <Modal opened onClose={onClose} title={`Alert thresholds of ${session}`} size="lg">
      <Stack data-testid="alert-thresholds-form">
        {sites.length > 1 && (
          <Select
            label="At site"
            description="Each site's agent evaluates its own alerts with its own thresholds."
            data={sites.map((site) => ({ value: site.siteId, label: site.siteName }))}
            value={siteId}
            onChange={(value) => {
              if (value) {
                setSiteId(value);
                setFields(null);
              }
            }}
            allowDeselect={false}
          />
        )}
        {view.error && <ProblemAlert error={view.error} title={`The thresholds at ${siteName} could not be read`} />}
        {!fields && !view.error && <Loader size="sm" />}
        {fields && checked && effective && (
          <>
            <NumberInput
              label="RPO target (seconds)"
              description={`An exposure alert once the secondary lags more than this. Empty: the site default${view.data!.own.rpoTargetSeconds === null ? ` (now ${effective.rpoTargetSeconds === null ? 'none' : `${effective.rpoTargetSeconds} s`})` : ''}.`}
              placeholder="site default"
              min={0}
              decimalScale={1}
              value={fields.rpoTargetSeconds}
              onChange={set('rpoTargetSeconds')}
              error={checked.errors.rpoTargetSeconds}
              data-testid="threshold-rpo"
            />
            <NumberInput
              label="Link down (seconds)"
              description={`A link-down alert once a peer link has been down this long. Empty: the site default${view.data!.own.linkDownSeconds === null ? ` (now ${effective.linkDownSeconds} s)` : ''}.`}
              placeholder="site default"
              min={0}
              decimalScale={1}
              value={fields.linkDownSeconds}
              onChange={set('linkDownSeconds')}
              error={checked.errors.linkDownSeconds}
              data-testid="threshold-link-down"
            />
            <NumberInput
              label="Async backlog (% of its limit)"
              description="A backlog alert once unshipped consistency groups fill this share of the limit past which the session suspends. Empty: the site default."
              placeholder="site default"
              min={0}
              max={100}
              value={fields.backlogPercent}
              onChange={set('backlogPercent')}
              error={checked.errors.backlogPercent}
              data-testid="threshold-backlog"
            />
            <Stack gap={4}>
              <Text size="sm" fw={500}>
                Alerts for this session
              </Text>
              <SegmentedControl
                data={[
                  { value: 'default', label: `Site default (${effective.enabled ? 'on' : 'off'})` },
                  { value: 'on', label: 'On' },
                  { value: 'off', label: 'Off' },
                ]}
                value={fields.enabled}
                onChange={(value) => set('enabled')(value)}
              />
            </Stack>
            <Text size="xs" c="dimmed" data-testid="threshold-effective">
              In effect at {siteName}: RPO target {effective.rpoTargetSeconds === null ? 'none' : `${effective.rpoTargetSeconds} s`}, link down after{' '}
              {effective.linkDownSeconds} s, backlog at {effective.backlogPercent} %, alerts {effective.enabled ? 'on' : 'off'}.
            </Text>
          </>
        )}
        {save.error && <ProblemAlert error={save.error} title="The thresholds were not changed" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Close
          </Button>
          <Button
            disabled={!checked?.request}
            loading={save.isPending}
            onClick={() => checked?.request && save.mutate(checked.request, { onSuccess: onClose })}
            data-testid="threshold-save"
          >
            Save thresholds
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
