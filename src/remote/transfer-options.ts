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
  };
}
