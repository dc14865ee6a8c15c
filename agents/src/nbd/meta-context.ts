import { BASE_ALLOCATION } from './protocol.ts';

/** The body of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT. */
export interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

export type MetaContextParse =
  | { ok: true; request: MetaContextRequest }
  | { ok: false; tooBig: boolean; message: string };

/** Most queries a client may send in one option; more is answered NBD_REP_ERR_TOO_BIG. */
export const MAX_META_CONTEXT_QUERIES = 128;
const MAX_STRING_BYTES = 4096;

/**
 * Parses `u32 name length, name, u32 query count, (u32 length, query)*`.
 * Any length that runs past the option data is a syntax error.
 */
export function parseMetaContextRequest(data: Buffer): MetaContextParse {
  let at = 0;
  const fail = (message: string): MetaContextParse => ({ ok: false, tooBig: false, message });
  if (data.length < 4) return fail('option data too short for an export name length');
  const nameLength = data.readUInt32BE(at);
  at += 4;
  if (nameLength > MAX_STRING_BYTES || at + nameLength + 4 > data.length) {
    return fail('export name length runs past the option data');
  }
  const exportName = data.toString('utf8', at, at + nameLength);
  at += nameLength;
  const count = data.readUInt32BE(at);
  at += 4;
  if (count > MAX_META_CONTEXT_QUERIES) {
    return { ok: false, tooBig: true, message: `at most ${MAX_META_CONTEXT_QUERIES} queries per request` };
  }
  const queries: string[] = [];
  for (let index = 0; index < count; index++) {
    if (at + 4 > data.length) return fail('query length runs past the option data');
    const length = data.readUInt32BE(at);
    at += 4;
    if (length > MAX_STRING_BYTES || at + length > data.length) {
      return fail('query runs past the option data');
    }
    queries.push(data.toString('utf8', at, at + length));
    at += length;
  }
  if (at !== data.length) return fail('trailing bytes after the last query');
  return { ok: true, request: { exportName, queries } };
}

/**
 * Whether a request selects `base:allocation`. Listing treats `base:` as a
 * wildcard and an empty query list as "everything"; setting needs the exact
 * name and selects nothing without queries. Unknown namespaces are ignored.
 */
export function selectsBaseAllocation(queries: string[], listing: boolean): boolean {
  if (listing && queries.length === 0) return true;
  for (const query of queries) {
    if (query === BASE_ALLOCATION) return true;
    if (listing && query === 'base:') return true;
  }
  return false;
}
