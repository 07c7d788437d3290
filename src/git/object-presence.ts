import { ObjectDatabase } from './object-database';

/**
 * Which objects the local repository has, for the push and fetch paths, which need the answers
 * for overlapping sets at several steps. The answers come from the object directories
 * (ObjectDatabase, read once per instance): `git cat-file` in a partial clone would try to fetch
 * a missing object from the promisor remote, i.e. through this helper.
 */
export class LocalObjects {
  private readonly answers = new Map<string, boolean>();
  private database?: Promise<ObjectDatabase>;

  /** Records answers learnt elsewhere (e.g. from resolving revisions). */
  learn(oids: Iterable<string>, present: Set<string>): void {
    for (const oid of oids) this.answers.set(oid, present.has(oid));
  }

  /** True only for an object already asked about and found. */
  knownPresent(oid: string): boolean {
    return this.answers.get(oid) === true;
  }

  /** The subset of `oids` that the local repository has. */
  async present(oids: Iterable<string>): Promise<Set<string>> {
    const out = new Set<string>();
    let database: ObjectDatabase | undefined;
    for (const oid of oids) {
      let known = this.answers.get(oid);
      if (known === undefined) {
        database ??= await (this.database ??= ObjectDatabase.open());
        known = database.has(oid);
        this.answers.set(oid, known);
      }
      if (known) out.add(oid);
    }
    return out;
  }
}
