/**
 * A shape check for untrusted DER, run before any ASN.1 library sees the bytes.
 *
 * It walks the TLV structure iteratively (no recursion, so no stack to exhaust) and refuses
 * what DER never needs: indefinite lengths, lengths over 4 bytes, children overrunning their
 * parent, trailing bytes, and nesting deeper than the caller allows. A CSR is about 8 levels
 * deep; a "10 k-deep" blob (docs/reliability.md rows B6) is refused here in microseconds, before the
 * recursive parser in asn1js could spend time or stack on it.
 */

/** Returns why `der` is not acceptable DER within `maxDepth` levels, or undefined when it is. */
export function derProblem(der: Uint8Array, maxDepth: number): string | undefined {
  const ends: number[] = [];
  let pos = 0;
  do {
    const limit = ends.length > 0 ? (ends[ends.length - 1] as number) : der.length;
    if (pos >= limit) return 'truncated';
    const tag = der[pos++] as number;
    if ((tag & 0x1f) === 0x1f) {
      // High tag number form: at most 4 continuation bytes.
      let n = 0;
      while (pos < limit && ((der[pos] as number) & 0x80) !== 0) {
        pos++;
        if (++n > 3) return 'tag too long';
      }
      pos++;
    }
    if (pos >= limit) return 'truncated';
    const first = der[pos++] as number;
    let len = first;
    if (first === 0x80) return 'indefinite length (BER, not DER)';
    if (first > 0x80) {
      const n = first & 0x7f;
      if (n > 4) return 'length field too long';
      if (pos + n > limit) return 'truncated';
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (der[pos++] as number);
    }
    const end = pos + len;
    if (end > limit) return 'length overruns its container';
    if ((tag & 0x20) !== 0) {
      if (ends.length >= maxDepth) return `nested deeper than ${maxDepth} levels`;
      ends.push(end);
    } else {
      pos = end;
    }
    while (ends.length > 0 && pos === ends[ends.length - 1]) ends.pop();
  } while (ends.length > 0);
  return pos === der.length ? undefined : 'trailing bytes after the structure';
}
