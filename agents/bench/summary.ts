import { headline } from './fio.ts';
import { median, num, ratio, table } from './format.ts';
import type { JobSamples } from './interleave.ts';
import { describe, judge, verdict, type JobTargets } from './targets.ts';

/** Medians of one job across servers, with the ratios and the verdict. */
export interface JobSummary {
  id: string;
  label: string;
  metric: string;
  servers: Record<string, { median: number; p50us: number; clatP50us: number; syncP50us: number | null; cpuUs: number | null; samples: number[] }>;
  ratios: { 'qemu-nbd': number | null; nbdkit: number | null };
  target: string;
  pass: boolean | null;
}

export function summarize(all: JobSamples[], targets: Record<string, JobTargets | undefined>, labelSuffix = ''): JobSummary[] {
  return all.map(({ job, samples }) => {
    const servers: JobSummary['servers'] = {};
    for (const [name, results] of Object.entries(samples)) {
      if (results.length === 0) continue;
      const syncs = results.map((r) => r.syncP50us).filter((v): v is number => v !== null);
      const cpus = results.map((r) => r.serverCpuUs).filter((v): v is number => v !== undefined);
      servers[name] = {
        median: median(results.map((r) => headline(job, r))),
        p50us: median(results.map((r) => r.p50us)),
        clatP50us: median(results.map((r) => r.clatP50us)),
        syncP50us: syncs.length ? median(syncs) : null,
        cpuUs: cpus.length ? median(cpus) : null,
        samples: results.map((r) => headline(job, r)),
      };
    }
    const tandem = servers.tandem?.median;
    const over = (anchor: string): number | null =>
      tandem !== undefined && servers[anchor] ? tandem / servers[anchor].median : null;
    const ratios = { 'qemu-nbd': over('qemu-nbd'), nbdkit: over('nbdkit') };
    const target = targets[job.id];
    return {
      id: job.id,
      label: job.label + labelSuffix,
      metric: job.metric,
      servers,
      ratios,
      target: describe(target),
      pass: judge(target, ratios),
    };
  });
}

const order = ['tandem', 'qemu-nbd', 'nbdkit'];

export function renderSummaries(rows: JobSummary[]): string {
  const header = ['job', 'tandem', 'qemu-nbd', 'nbdkit', 'p50 µs t / q / n', 'server CPU µs/op t / q / n', 't/qemu-nbd', 't/nbdkit', 'target', ''];
  const body = rows.map((row) => [
    `${row.label} (${row.metric})`,
    ...order.map((n) => num(row.servers[n]?.median)),
    order.map((n) => num(row.servers[n]?.p50us)).join(' / '),
    order.map((n) => num(row.servers[n]?.cpuUs)).join(' / '),
    ratio(row.ratios['qemu-nbd']),
    ratio(row.ratios.nbdkit),
    row.target,
    verdict(row.pass),
  ]);
  return table(header, body);
}
