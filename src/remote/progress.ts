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

/**
 * Git-style transfer progress on stderr ("Uploading: 12.30 MiB | 5.60 MiB/s"), the way git shows
 * "Receiving objects": bytes so far and the average rate since the transfer started.
 */
export class TransferProgress {
  private readonly started = Date.now();
  private last = 0;
  private bytes = 0;

  constructor(
    private readonly title: string,
    private readonly enabled: boolean,
  ) {}

  /** `bytes` is the running total transferred so far. */
  update(bytes: number): void {
    this.bytes = bytes;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.draw();
  }

  done(): void {
    if (!this.enabled) return;
    this.draw();
    process.stderr.write(', done.\n');
  }

  private draw(): void {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    process.stderr.write(`\r${this.title}: ${humaniseBytes(this.bytes)} | ${humaniseBytes(this.bytes / seconds)}/s`);
  }
}

/** Git's own formatting (strbuf_humanise_bytes): bytes, then KiB, MiB, GiB with two decimals. */
export function humaniseBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB'];
  if (n < 1024) return `${Math.floor(n)} bytes`;
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(2)} ${units[unit]}`;
}
