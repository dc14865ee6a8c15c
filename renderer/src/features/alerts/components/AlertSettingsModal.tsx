import { Button, Group, Loader, Modal, NumberInput, Stack, Switch, TextInput } from '@mantine/core';
import { useEffect, useState } from 'react';
import { SetAlertSettingsRequestSchema, type AlertSettings, type SetAlertSettingsRequest } from '@tandem/contract';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useAlertSettings, useSetAlertSettings } from '../hooks/use-alerts.ts';

type FieldValue = number | string;
interface Fields {
  poolFullPercent: FieldValue;
  webhookUrl: string;
  rpoTargetSeconds: FieldValue;
  linkDownSeconds: FieldValue;
  backlogPercent: FieldValue;
  enabled: boolean;
}
type Errors = Partial<Record<keyof Fields, string>>;

function fieldsOf(settings: AlertSettings): Fields {
  return {
    poolFullPercent: settings.poolFullPercent,
    webhookUrl: settings.webhookUrl ?? '',
    rpoTargetSeconds: settings.sessionDefaults.rpoTargetSeconds ?? '',
    linkDownSeconds: settings.sessionDefaults.linkDownSeconds,
    backlogPercent: settings.sessionDefaults.backlogPercent,
    enabled: settings.sessionDefaults.enabled,
  };
}

const numberOrError = (value: FieldValue, required: boolean): number | null | string =>
  value === '' ? (required ? 'required' : null) : typeof value === 'number' ? value : 'a number';

/** The request the form stands for (every field sent); errors by field, checked with the contract's schema. */
export function settingsRequest(fields: Fields): { request: SetAlertSettingsRequest | null; errors: Errors } {
  const errors: Errors = {};
  const pool = numberOrError(fields.poolFullPercent, true);
  const rpo = numberOrError(fields.rpoTargetSeconds, false);
  const linkDown = numberOrError(fields.linkDownSeconds, true);
  const backlog = numberOrError(fields.backlogPercent, true);
  for (const [key, value] of [['poolFullPercent', pool], ['rpoTargetSeconds', rpo], ['linkDownSeconds', linkDown], ['backlogPercent', backlog]] as const) {
    if (typeof value === 'string') errors[key] = value;
  }
  const raw = {
    poolFullPercent: pool,
    webhookUrl: fields.webhookUrl.trim() === '' ? null : fields.webhookUrl.trim(),
    sessionDefaults: { rpoTargetSeconds: rpo, linkDownSeconds: linkDown, backlogPercent: backlog, enabled: fields.enabled },
  };
  const parsed = SetAlertSettingsRequestSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const key = String(issue.path.at(-1)) as keyof Fields;
      errors[key] ??= issue.message;
    }
  }
  return { request: parsed.success && Object.keys(errors).length === 0 ? parsed.data : null, errors };
}

/** A site's alert settings: pool nearly full, the webhook, and the thresholds of sessions that set none of their own. */
export function AlertSettingsModal({ siteId, siteName, onClose }: { siteId: string; siteName: string; onClose: () => void }) {
  const settings = useAlertSettings(siteId);
  const save = useSetAlertSettings(siteId);
  const [fields, setFields] = useState<Fields | null>(null);
  useEffect(() => {
    if (settings.data) setFields(fieldsOf(settings.data));
  }, [settings.data]);
  const checked = fields ? settingsRequest(fields) : null;
  const set = (key: keyof Fields) => (value: FieldValue | boolean) => setFields((current) => (current ? { ...current, [key]: value } : current));

  return (
    <Modal opened onClose={onClose} title={`Alert settings at ${siteName}`} size="lg">
      <Stack data-testid="alert-settings-form">
        {settings.error && <ProblemAlert error={settings.error} title="The alert settings could not be read" />}
        {!fields && !settings.error && <Loader size="sm" />}
        {fields && checked && (
          <>
            <NumberInput
              label="Pool nearly full (%)"
              description="A pool-full alert once the pool's extents in use reach this share of what the pool and its file system can hold."
              min={1}
              max={100}
              value={fields.poolFullPercent}
              onChange={set('poolFullPercent')}
              error={checked.errors.poolFullPercent}
              data-testid="settings-pool-full"
            />
            <TextInput
              label="Webhook"
              description="Every raised and cleared alert is POSTed here as JSON (retried with backoff). Empty: none."
              placeholder="https://hooks.example/tandem"
              value={fields.webhookUrl}
              onChange={(event) => set('webhookUrl')(event.currentTarget.value)}
              error={checked.errors.webhookUrl}
              data-testid="settings-webhook"
            />
            <NumberInput
              label="Default RPO target (seconds)"
              description="Sessions without their own: an exposure alert above it. Empty: no exposure alerts."
              min={0}
              decimalScale={1}
              value={fields.rpoTargetSeconds}
              onChange={set('rpoTargetSeconds')}
              error={checked.errors.rpoTargetSeconds}
              data-testid="settings-rpo"
            />
            <NumberInput
              label="Default link down (seconds)"
              min={0}
              decimalScale={1}
              value={fields.linkDownSeconds}
              onChange={set('linkDownSeconds')}
              error={checked.errors.linkDownSeconds}
              data-testid="settings-link-down"
            />
            <NumberInput
              label="Default async backlog (% of its limit)"
              min={0}
              max={100}
              value={fields.backlogPercent}
              onChange={set('backlogPercent')}
              error={checked.errors.backlogPercent}
              data-testid="settings-backlog"
            />
            <Switch label="Alerts for sessions that do not say otherwise" checked={fields.enabled} onChange={(event) => set('enabled')(event.currentTarget.checked)} />
          </>
        )}
        {save.error && <ProblemAlert error={save.error} title="The alert settings were not changed" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Close
          </Button>
          <Button
            disabled={!checked?.request}
            loading={save.isPending}
            onClick={() => checked?.request && save.mutate(checked.request, { onSuccess: onClose })}
            data-testid="settings-save"
          >
            Save settings
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
