// Makes an example profile runnable on loopback: the examples name the
// cache-indexer by its Kubernetes Service (`cache-indexer-service`) and
// keep the product's 5 s timeout; the demo points them at the local
// indexer with a short timeout. Works on raw EndpointPickerConfigs and on
// Helm values files that embed one as a string, since both spell the
// parameters the same way.

export interface LocalIndexer {
  host: string;
  port: number;
  /** kvCacheManagerTimeout is in nanoseconds, as in the product docs. */
  timeoutNs: number;
}

export function localizeProfile(text: string, indexer: LocalIndexer): string {
  return text
    .replace(/(kvCacheManagerIP:\s*)("[^"\n]*"|'[^'\n]*'|[^\s#]+)/g, `$1${indexer.host}`)
    .replace(/(kvCacheManagerPort:\s*)("?\d+"?)/g, `$1${indexer.port}`)
    .replace(/(kvCacheManagerTimeout:\s*)("?\d+"?)/g, `$1${indexer.timeoutNs}`);
}

/** Whether a profile schedules PD groups (and so needs a PD topology). */
export function isPdProfile(text: string): boolean {
  return /type:\s*filter-by-pd-label\b/.test(text);
}

/** Whether a profile asks the cache-indexer for hit rates. */
export function usesCacheIndexer(text: string): boolean {
  return /kvCacheManagerIP\s*:/.test(text);
}
