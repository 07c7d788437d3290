/** What git asked for with `option` lines. */
export interface TransferOptions {
  progress: boolean;
  verbosity: number;
  dryRun: boolean;
  force: boolean;
  atomic: boolean;
  cloning: boolean;
  followTags: boolean;
  checkConnectivity: boolean;
  /** --force-with-lease expectations: ref → expected remote value ("" = must not exist). */
  leases: Map<string, string>;
  /** `option depth`: commits to fetch from each tip (0: no limit); 0x7fffffff is `--unshallow`. */
  depth: number;
  /** `option deepen-relative`: `--deepen=<n>`, depth counted from the current shallow boundary. */
  deepenRelative: boolean;
  /** `option deepen-since`: `--shallow-since`, as the user wrote it (git's approxidate reads it). */
  deepenSince?: string;
  /** `option deepen-not`: `--shallow-exclude` refs. */
  deepenNot: string[];
  /** `option filter`: a partial clone's filter-spec. */
  filter?: string;
  /** `option from-promisor`: the pack is marked as coming from the promisor remote. */
  fromPromisor: boolean;
  /** `option no-dependents`: only the objects named, nothing they reach (older git's lazy fetch). */
  noDependents: boolean;
  /** `option refetch`: `git fetch --refetch`, as if the local repository had nothing. */
  refetch: boolean;
}

export function defaultTransferOptions(): TransferOptions {
  return {
    progress: false,
    verbosity: 1,
    dryRun: false,
    force: false,
    atomic: false,
    cloning: false,
    followTags: false,
    checkConnectivity: false,
    leases: new Map(),
    depth: 0,
    deepenRelative: false,
    deepenNot: [],
    fromPromisor: false,
    noDependents: false,
    refetch: false,
  };
}
