import type { Readable } from 'node:stream';

/** Reads LF-terminated lines from a stream; null at end of input. */
export class LineReader {
  private buffered = '';
  private ended = false;
  private waiting?: () => void;

  constructor(input: Readable) {
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      this.buffered += chunk;
      this.wake();
    });
    input.on('end', () => {
      this.ended = true;
      this.wake();
    });
    input.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  async next(): Promise<string | null> {
    for (;;) {
      const nl = this.buffered.indexOf('\n');
      if (nl >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        return line;
      }
      if (this.ended) {
        if (this.buffered === '') return null;
        const line = this.buffered;
        this.buffered = '';
        return line;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}
