import { VolumeInfoSchema, VolumeListSchema, type CreateVolumeRequest, type VolumeInfo, type VolumeList } from '@tandem/contract';
import type { ApiClient } from '../../../lib/api-client.ts';

const base = (siteId: string) => `/api/sites/${encodeURIComponent(siteId)}/volumes`;
const one = (siteId: string, name: string) => `${base(siteId)}/${encodeURIComponent(name)}`;

export const volumesApi = {
  list: (api: ApiClient, siteId: string): Promise<VolumeList> => api.get(base(siteId), VolumeListSchema),
  create: (api: ApiClient, siteId: string, request: CreateVolumeRequest): Promise<VolumeInfo> => api.send('POST', base(siteId), request, VolumeInfoSchema),
  resize: (api: ApiClient, siteId: string, name: string, sizeBytes: number): Promise<VolumeInfo> =>
    api.send('PATCH', one(siteId, name), { sizeBytes }, VolumeInfoSchema),
  remove: (api: ApiClient, siteId: string, name: string): Promise<void> => api.perform('DELETE', one(siteId, name)),
  snapshot: (api: ApiClient, siteId: string, source: string, name: string): Promise<VolumeInfo> =>
    api.send('POST', `${one(siteId, source)}/snapshots`, { name }, VolumeInfoSchema),
};
