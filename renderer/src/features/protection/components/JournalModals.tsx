import { Button, Code, Group, Modal, NumberInput, Stack, Text, TextInput } from '@mantine/core';
import { useState } from 'react';
import { BookmarkRequestSchema, type ImageAccessInfo, type JournalView } from '@tandem/contract';
import { ProblemAlert } from '../../../lib/ProblemAlert.tsx';
import { fieldsOfPolicy, journalRequest, useBookmark, useDisableJournal, useEndImage, useOpenImage, useSetJournal, type JournalFields } from '../hooks/use-journal.ts';

interface Target {
  siteId: string;
  siteName: string;
  session: string;
}

/**
 * Turns a session's journal on (no `current`) or changes its policy: space
 * in GiB, the required window in hours, bookmark retention in days. Checked
 * with the contract's schema before it is sent; the agent's refusal is shown
 * with its problem code.
 */
export function JournalPolicyModal({ target, current, onClose }: { target: Target; current: JournalView | null; onClose: () => void }) {
  const [fields, setFields] = useState<JournalFields>(current ? fieldsOfPolicy(current) : { spaceGiB: 10, windowHours: 24, retentionDays: '' });
  const save = useSetJournal(target.siteId, target.session);
  const checked = journalRequest(fields);
  const set = (key: keyof JournalFields) => (value: number | string) => setFields((now) => ({ ...now, [key]: value }));
  return (
    <Modal opened onClose={onClose} title={current ? `Journal settings of ${target.session}` : `Protect ${target.session} with a journal`}>
      <Stack data-testid="journal-form">
        <Text size="sm" c="dimmed">
          The journal is kept at {target.siteName}, the session&apos;s secondary site: every replicated write is kept for the protection window, and any point in it can be
          opened as an image.
        </Text>
        <NumberInput label="Space (GiB)" description="The journal's space in the pool." min={0} decimalScale={2} value={fields.spaceGiB} onChange={set('spaceGiB')} error={checked.errors.spaceGiB} data-testid="journal-space" />
        <NumberInput
          label="Required protection window (hours)"
          description="A warning when the journal cannot hold this far back (at 85 % and 75 % of it)."
          min={0}
          decimalScale={2}
          value={fields.windowHours}
          onChange={set('windowHours')}
          error={checked.errors.windowHours}
          data-testid="journal-window"
        />
        <NumberInput
          label="Keep bookmarks (days)"
          description="Empty: bookmarks are kept until space runs out."
          placeholder="until space runs out"
          min={0}
          decimalScale={2}
          value={fields.retentionDays}
          onChange={set('retentionDays')}
          error={checked.errors.retentionDays}
          data-testid="journal-retention"
        />
        {save.error && <ProblemAlert error={save.error} title={current ? 'The journal settings were not changed' : 'The journal was not turned on'} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button disabled={!checked.request} loading={save.isPending} onClick={() => checked.request && save.mutate(checked.request, { onSuccess: onClose })} data-testid="journal-save">
            {current ? 'Save settings' : 'Turn journal on'}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/** A named point in time now: `POST …/journal/bookmarks`. */
export function BookmarkModal({ target, onClose }: { target: Target; onClose: () => void }) {
  const [name, setName] = useState('');
  const bookmark = useBookmark(target.siteId, target.session);
  const checked = BookmarkRequestSchema.safeParse({ name: name.trim() });
  return (
    <Modal opened onClose={onClose} title={`Bookmark ${target.session}`}>
      <Stack>
        <TextInput
          label="Bookmark name"
          description="A named point at every write the secondary has received."
          value={name}
          onChange={(event) => setName(event.currentTarget.value)}
          error={name !== '' && !checked.success ? checked.error.issues[0]?.message : undefined}
          data-testid="bookmark-name"
        />
        {bookmark.error && <ProblemAlert error={bookmark.error} title="No bookmark was taken" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button disabled={!checked.success} loading={bookmark.isPending} onClick={() => checked.success && bookmark.mutate(checked.data.name, { onSuccess: onClose })} data-testid="bookmark-save">
            Take bookmark
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/** The NBD exports of an open image, for hosts, with its End access button. */
export function ImageExports({ target, image }: { target: Target; image: ImageAccessInfo }) {
  const end = useEndImage(target.siteId, target.session);
  return (
    <Stack gap={4} data-testid={`image-${image.id}`}>
      <Text size="sm">
        Image {image.id} at {image.point.bookmark ? `bookmark ${image.point.bookmark}` : new Date(image.point.timeMs).toLocaleString()}: hosts connect over NBD to {target.siteName}, export
        {image.exports.length === 1 ? '' : 's'}{' '}
        {image.exports.map((each, index) => (
          <span key={each.export}>
            {index > 0 && ', '}
            <Code data-testid="image-export">{each.export}</Code> ({each.volume})
          </span>
        ))}
        .
      </Text>
      {end.error && <ProblemAlert error={end.error} title="Access did not end" />}
      <Group>
        <Button size="xs" color="red" variant="light" loading={end.isPending} onClick={() => end.mutate(image.id)} data-testid={`image-end-${image.id}`}>
          End access
        </Button>
        <Text size="xs" c="dimmed">
          What hosts wrote to the image is discarded.
        </Text>
      </Group>
    </Stack>
  );
}

/** Instant image access at a bookmark: `POST …/images`, then the export names for hosts and End access. */
export function OpenImageModal({ target, bookmark, onClose }: { target: Target; bookmark: string; onClose: () => void }) {
  const open = useOpenImage(target.siteId, target.session);
  return (
    <Modal opened onClose={onClose} title={`Open an image of ${target.session} at ${bookmark}`}>
      <Stack>
        {!open.data && (
          <Text size="sm">
            An instant, read-write image of the replica as of bookmark <b>{bookmark}</b>, exported over NBD at {target.siteName}. Replication keeps arriving meanwhile; what hosts write to the
            image is discarded when access ends.
          </Text>
        )}
        {open.data && <ImageExports target={target} image={open.data} />}
        {open.error && <ProblemAlert error={open.error} title="The image was not opened" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Close
          </Button>
          {!open.data && (
            <Button loading={open.isPending} onClick={() => open.mutate({ bookmark })} data-testid="image-open">
              Open image
            </Button>
          )}
        </Group>
      </Stack>
    </Modal>
  );
}

/** `DELETE …/journal`, once the administrator read what goes with it. */
export function TurnOffJournalModal({ target, view, onClose }: { target: Target; view: JournalView; onClose: () => void }) {
  const off = useDisableJournal(target.siteId, target.session);
  return (
    <Modal opened onClose={onClose} title={`Turn off the journal of ${target.session}?`}>
      <Stack>
        <Text size="sm" data-testid="journal-off-warning">
          Every point in time and every bookmark ({plural(view.status.pointCount, 'point')}, {plural(view.status.bookmarkCount, 'bookmark')}) is lost: no image before now can be opened again.
          {view.images.length > 0 && ` The ${view.images.length} open image${view.images.length === 1 ? '' : 's'} end, and what hosts wrote to them is discarded.`}
        </Text>
        {off.error && <ProblemAlert error={off.error} title="The journal is still on" />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button color="red" loading={off.isPending} onClick={() => off.mutate(undefined, { onSuccess: onClose })} data-testid="journal-off-confirm">
            Turn off and lose the points
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}

/** `1 point`, `120 points`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
