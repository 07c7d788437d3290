/**
 * Git-style progress on stderr ("Encrypting objects:  45% (4500/10000)"), shown only when git
 * asked for progress; redrawn at most every 100 ms, finished with ", done.".
 */
export class Progress {
  private last = 0;
  private shown = false;

  constructor(
    private readonly title: string,
    private readonly enabled: boolean,
  ) {}

  tick(done: number, total: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (done < total && now - this.last < 100) return;
    this.last = now;
    this.shown = true;
    const pct = total ? Math.floor((done * 100) / total) : 100;
    process.stderr.write(`\r${this.title}: ${String(pct).padStart(3)}% (${done}/${total})`);
  }

  done(): void {
    if (this.enabled && this.shown) process.stderr.write(', done.\n');
    this.shown = false;
  }
}
