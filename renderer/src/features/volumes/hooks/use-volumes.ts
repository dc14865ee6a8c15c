import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { CreateVolumeRequest } from '@tandem/contract';
import { useApi } from '../../../app/api-context.tsx';
import { siteKeys } from '../../sites/api/site-keys.ts';
import { trackMapKeys } from '../../track-map/api/track-map-keys.ts';
import { volumeKeys } from '../api/volume-keys.ts';
import { volumesApi } from '../api/volumes-api.ts';

export function useVolumes(siteId: string, enabled = true) {
  const api = useApi();
  return useQuery({ queryKey: volumeKeys.list(siteId), queryFn: () => volumesApi.list(api, siteId), enabled });
}

/** After a change we made: refresh this site's volumes, pool and maps (the agent's event does the same for other consoles). */
function useSiteInvalidation(siteId: string) {
  const queryClient = useQueryClient();
  return () =>
    Promise.all([
      queryClient.invalidateQueries({ queryKey: volumeKeys.site(siteId) }),
      queryClient.invalidateQueries({ queryKey: siteKeys.pool(siteId) }),
      queryClient.invalidateQueries({ queryKey: trackMapKeys.site(siteId) }),
    ]);
}

export function useCreateVolume(siteId: string) {
  const api = useApi();
  const invalidate = useSiteInvalidation(siteId);
  return useMutation({ mutationFn: (request: CreateVolumeRequest) => volumesApi.create(api, siteId, request), onSuccess: invalidate });
}

export function useResizeVolume(siteId: string) {
  const api = useApi();
  const invalidate = useSiteInvalidation(siteId);
  return useMutation({
    mutationFn: ({ name, sizeBytes }: { name: string; sizeBytes: number }) => volumesApi.resize(api, siteId, name, sizeBytes),
    onSuccess: invalidate,
  });
}

export function useDeleteVolume(siteId: string) {
  const api = useApi();
  const invalidate = useSiteInvalidation(siteId);
  return useMutation({ mutationFn: (name: string) => volumesApi.remove(api, siteId, name), onSuccess: invalidate });
}

export function useSnapshotVolume(siteId: string) {
  const api = useApi();
  const invalidate = useSiteInvalidation(siteId);
  return useMutation({
    mutationFn: ({ source, name }: { source: string; name: string }) => volumesApi.snapshot(api, siteId, source, name),
    onSuccess: invalidate,
  });
}
