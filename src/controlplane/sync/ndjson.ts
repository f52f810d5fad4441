/**
 * Splits a byte stream into lines of newline-delimited JSON, refusing any line longer than a
 * limit before it is buffered whole (so a peer that never sends '\n' cannot grow memory).
 * Both ends of the instance stream read with it.
 */

export class LineTooLongError extends Error {
  constructor(limit: number) {
    super(`a message is longer than ${limit} bytes`);
    this.name = 'LineTooLongError';
  }
}

export class LineSplitter {
  readonly #limit: number;
  #parts: Buffer[] = [];
  #size = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * Feeds a chunk; returns the complete lines it finished (without '\n', empty lines dropped).
   * @throws LineTooLongError when a line passes the limit.
   */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      if (this.#size + piece.length > this.#limit) throw new LineTooLongError(this.#limit);
      const line = this.#size === 0 ? piece.toString('utf8') : Buffer.concat([...this.#parts, piece]).toString('utf8');
      this.#parts = [];
      this.#size = 0;
      if (line.length > 0) lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#size += rest.length;
      if (this.#size > this.#limit) throw new LineTooLongError(this.#limit);
      this.#parts.push(Buffer.from(rest));
    }
    return lines;
  }
}
