import { Alert, Button, Checkbox, Group, List, Loader, Modal, NativeSelect, SegmentedControl, Stack, Stepper, Text, TextInput } from '@mantine/core';
import { SessionActionOptionsSchema, type JournalPoint, type JournalView, type SessionActionOptions } from '@tandem/contract';
import { useState } from 'react';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { useNow } from '../../../lib/use-now.ts';
import { PreflightSummary } from '../../sessions/components/PreflightSummary.tsx';
import { usePreflight, useSessionAction, useSessionAt } from '../../sessions/hooks/use-sessions.ts';
import { plural } from './JournalModals.tsx';
import { JournalTimeline } from './JournalTimeline.tsx';

export type RecoverPointKind = 'bookmark' | 'time' | 'point';

export interface RecoverTarget {
  /** The console site of the session's secondary (where the journal is and the recover runs). */
  siteId: string;
  siteName: string;
  session: string;
  /** Where production ran until now (the session's H1 site or sites). */
  primarySites: string;
}

/** `2026-12-08T01:02:03` (local time, what a datetime-local input holds) of an epoch time. */
function localInputValue(timeMs: number): string {
  const date = new Date(timeMs);
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/**
 * The recover's body for the choice made, checked with the contract's schema
 * (at most one of bookmark, at, seq), and the words for it; null with a
 * reason when the choice is not a point yet.
 */
export function recoverChoice(kind: RecoverPointKind, value: string): { options: SessionActionOptions; words: string } | { error: string } {
  if (value === '') return { error: kind === 'bookmark' ? 'choose a bookmark' : kind === 'time' ? 'enter a time' : 'choose a point' };
  let options: SessionActionOptions;
  let words: string;
  if (kind === 'bookmark') {
    options = { bookmark: value };
    words = `bookmark ${value}`;
  } else if (kind === 'point') {
    options = { seq: Number(value) };
    words = `point ${value}`;
  } else {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return { error: 'not a time' };
    options = { at: date.toISOString() };
    words = `the newest point at or before ${date.toLocaleString()}`;
  }
  const parsed = SessionActionOptionsSchema.safeParse(options);
  return parsed.success ? { options: parsed.data, words } : { error: parsed.error.issues[0]?.message ?? 'not a point' };
}

/**
 * Recover production at a journal point: pick a bookmark, a time or a point
 * of the timeline -> confirm in plain words (the replica rolls back to it,
 * the journal with its points, bookmarks and images ends, hosts may write at
 * the secondary) -> `POST …/actions/recover` with the point -> the failback
 * preflight (what a failback would copy back, the rolled-back tracks
 * included), with the way on to the failback wizard. The agent's refusal
 * (unknown bookmark, an image in use, a time out of range) is shown with its
 * problem code on the confirm step, nothing changed.
 */
export function RecoverProductionWizard({
  target,
  view,
  points,
  initial,
  onFailback,
  onClose,
}: {
  target: RecoverTarget;
  view: JournalView;
  points: JournalPoint[];
  initial?: { kind: RecoverPointKind; value: string };
  onFailback?: () => void;
  onClose: () => void;
}) {
  const bookmarks = points.filter((point) => point.bookmark !== null);
  const [kind, setKind] = useState<RecoverPointKind>(initial?.kind ?? (bookmarks.length > 0 ? 'bookmark' : 'point'));
  const [values, setValues] = useState<Record<RecoverPointKind, string>>({
    bookmark: initial?.kind === 'bookmark' ? initial.value : (bookmarks.at(-1)?.bookmark ?? ''),
    point: initial?.kind === 'point' ? initial.value : String(points.at(-1)?.seq ?? ''),
    time: initial?.kind === 'time' ? initial.value : view.status.newestPoint ? localInputValue(view.status.newestPoint.timeMs) : '',
  });
  const [step, setStep] = useState(0);
  const [acknowledged, setAcknowledged] = useState(false);
  // What was recovered to, kept once done: the journal (and its points) are gone then.
  const [recovered, setRecovered] = useState<string | null>(null);
  const recover = useSessionAction();
  const choice = recoverChoice(kind, values[kind]);
  const chosenPoint = kind === 'bookmark' ? bookmarks.find((point) => point.bookmark === values.bookmark) : kind === 'point' ? points.find((point) => String(point.seq) === values.point) : undefined;
  // After the recover: wait for the secondary to report the session target-available, then ask it what a failback copies.
  const session = useSessionAt(target.siteId, target.session, step === 2, step === 2 ? 1000 : false);
  const available = session.data?.state === 'target-available';
  const preflight = usePreflight(target.siteId, target.session, { verifyCodes: true, fullCompare: false }, step === 2 && available);
  const { status } = view;
  const now = useNow();

  const start = () => {
    if (!('options' in choice)) return;
    recover.mutate(
      { siteId: target.siteId, name: target.session, action: 'recover', options: choice.options },
      {
        onSuccess: () => {
          setRecovered(choice.words);
          setStep(2);
        },
      },
    );
  };

  return (
    <Modal opened onClose={onClose} title={`Recover production of ${target.session}`} size="xl" closeOnClickOutside={false}>
      <Stepper active={step} size="xs">
        <Stepper.Step label="Point in time">
          <Stack mt="md" gap="xs" data-testid="recover-point-step">
            <Text size="sm">
              Choose the point to roll {target.siteName}&apos;s replica back to. The journal covers {plural(status.pointCount, 'point')}
              {status.oldestPoint ? ` from ${new Date(status.oldestPoint.timeMs).toLocaleString()}` : ''}
              {status.newestPoint ? ` to ${new Date(status.newestPoint.timeMs).toLocaleString()}` : ''}.
            </Text>
            <JournalTimeline
              oldest={status.oldestPoint}
              points={points}
              now={now}
              selected={chosenPoint ?? null}
              onPick={(point) => {
                setKind('point');
                setValues((current) => ({ ...current, point: String(point.seq) }));
              }}
            />
            <SegmentedControl
              value={kind}
              onChange={(value) => setKind(value as RecoverPointKind)}
              data={[
                { value: 'bookmark', label: 'Bookmark', disabled: bookmarks.length === 0 },
                { value: 'time', label: 'Time' },
                { value: 'point', label: 'Point on the timeline' },
              ]}
              data-testid="recover-kind"
            />
            {kind === 'bookmark' && (
              <NativeSelect
                label="Bookmark"
                data={[{ value: '', label: 'choose a bookmark' }, ...bookmarks.map((point) => ({ value: point.bookmark!, label: `${point.bookmark} (${new Date(point.timeMs).toLocaleString()}, point ${point.seq})` }))]}
                value={values.bookmark}
                onChange={(event) => setValues({ ...values, bookmark: event.currentTarget.value })}
                data-testid="recover-bookmark"
              />
            )}
            {kind === 'time' && (
              <TextInput
                type="datetime-local"
                step={1}
                label="Time (this computer's time zone)"
                description="The replica becomes the image of the newest point at or before it; a time before the oldest point is refused."
                value={values.time}
                onChange={(event) => setValues({ ...values, time: event.currentTarget.value })}
                error={'error' in choice && values.time !== '' ? choice.error : undefined}
                data-testid="recover-time"
              />
            )}
            {kind === 'point' && (
              <NativeSelect
                label="Point on the timeline"
                data={[
                  { value: '', label: 'choose a point' },
                  ...[...points].reverse().map((point) => ({ value: String(point.seq), label: `point ${point.seq}: ${new Date(point.timeMs).toLocaleString()}${point.bookmark ? ` (bookmark ${point.bookmark})` : ''}` })),
                ]}
                value={values.point}
                onChange={(event) => setValues({ ...values, point: event.currentTarget.value })}
                data-testid="recover-seq"
              />
            )}
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Confirm">
          <Stack mt="md" gap="xs">
            <Alert color="red" title={`Roll ${target.siteName}'s replica of ${target.session} back to ${'words' in choice ? choice.words : '…'}?`}>
              <List size="sm" spacing={4} data-testid="recover-consequence">
                <List.Item>
                  The replica volumes at {target.siteName} ({view.volumes.join(', ')}) are rolled back to that point: every track written after it gets its content at the point again.
                </List.Item>
                <List.Item>
                  The journal ends: its {plural(status.pointCount, 'point')} and {plural(status.bookmarkCount, 'bookmark')} are gone, and no other point can be opened or recovered afterwards.
                </List.Item>
                <List.Item>
                  Mirroring from {target.primarySites} stops and hosts may write at {target.siteName} from now on: production runs there. Writes at {target.primarySites} after now do not reach it.
                </List.Item>
                <List.Item>The rolled-back tracks are marked for the failback, which copies them (and later writes) back to {target.primarySites}.</List.Item>
              </List>
            </Alert>
            {view.images.length > 0 && (
              <Alert color="orange" p="xs" data-testid="recover-images-open">
                <Text size="sm">
                  {plural(view.images.length, 'image')} of this journal {view.images.length === 1 ? 'is' : 'are'} open: the agent refuses the recover while hosts use one (end access first).
                </Text>
              </Alert>
            )}
            <Checkbox label={`I understand: ${target.siteName}'s replica is rolled back and the journal ends`} checked={acknowledged} onChange={(event) => setAcknowledged(event.currentTarget.checked)} data-testid="recover-acknowledge" />
            {recover.error && <ProblemAlert error={recover.error} title="Production was not recovered; nothing changed" />}
          </Stack>
        </Stepper.Step>
        <Stepper.Step label="Failback preflight">
          <Stack mt="md" gap="xs" data-testid="recover-done">
            <Alert color="green" p="xs">
              <Text size="sm">
                Recovered at {recovered}: {target.siteName} holds the image of that point and takes host writes. The journal has ended.
              </Text>
            </Alert>
            <Text size="sm">What a failback would copy from {target.siteName} back to {target.primarySites} (segment codes compared; nothing moves yet):</Text>
            {!available && !session.error && (
              <Group gap="xs">
                <Loader size="xs" />
                <Text size="sm" c="dimmed">
                  waiting for {target.siteName} to report the session target-available ({session.data?.state ?? 'asking'})
                </Text>
              </Group>
            )}
            {session.error && <ProblemAlert error={session.error} title="The session could not be read" />}
            {preflight.isLoading && <Loader size="sm" />}
            {preflight.error && <ProblemAlert error={preflight.error} title="The preflight failed" />}
            {preflight.data && <PreflightSummary preflight={preflight.data} pairs={session.data?.pairs ?? []} h1Site={session.data?.h1Site} />}
          </Stack>
        </Stepper.Step>
      </Stepper>
      <Group justify="space-between" mt="lg">
        <Button variant="default" onClick={onClose}>
          {step === 2 ? 'Close' : 'Cancel'}
        </Button>
        <Group gap="xs">
          {step === 1 && (
            <Button variant="default" onClick={() => setStep(0)} disabled={recover.isPending}>
              Back
            </Button>
          )}
          {step === 0 && (
            <Button disabled={!('options' in choice)} onClick={() => setStep(1)} data-testid="recover-next">
              Next
            </Button>
          )}
          {step === 1 && (
            <Button color="red" disabled={!acknowledged || !('options' in choice)} loading={recover.isPending} onClick={start} data-testid="recover-start">
              Recover production
            </Button>
          )}
          {step === 2 && onFailback && (
            <Button color="grape" disabled={!available} onClick={onFailback} data-testid="recover-failback">
              Fail back…
            </Button>
          )}
        </Group>
      </Group>
    </Modal>
  );
}
