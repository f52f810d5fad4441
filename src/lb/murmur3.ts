/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby, public domain), over the UTF-8 bytes of a
 * JavaScript string. The ring-hash balancer uses it for its virtual nodes and request keys.
 *
 * The string is encoded to UTF-8 on the fly, byte by byte, so hashing allocates nothing (no
 * `TextEncoder`, no Buffer): it runs on every ring-hash pick. Lone surrogates are hashed as
 * U+FFFD, as `TextEncoder` encodes them, so the result equals murmur3 of
 * `Buffer.from(s, 'utf8')` for every string.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Returns the unsigned 32-bit MurmurHash3 of the UTF-8 encoding of `s`. */
export function murmur3(s: string, seed = 0): number {
  let h = seed | 0;
  let block = 0; // bytes gathered for the current 4-byte block, little-endian
  let shift = 0; // bit offset of the next byte in `block`
  let length = 0; // bytes hashed so far
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    // `seq` holds the code point's UTF-8 bytes, first byte in the low bits; `count` how many.
    let seq: number;
    let count: number;
    if (c < 0x80) {
      seq = c;
      count = 1;
    } else if (c < 0x800) {
      seq = (0xc0 | (c >>> 6)) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
        } else {
          c = 0xfffd; // lone surrogate
        }
      }
      if (c < 0x10000) {
        seq = (0xe0 | (c >>> 12)) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        count = 3;
      } else {
        seq =
          (0xf0 | (c >>> 18)) |
          ((0x80 | ((c >>> 12) & 0x3f)) << 8) |
          ((0x80 | ((c >>> 6) & 0x3f)) << 16) |
          ((0x80 | (c & 0x3f)) << 24);
        count = 4;
      }
    }
    length += count;
    for (let b = 0; b < count; b++) {
      block |= (seq & 0xff) << shift;
      seq >>>= 8;
      shift += 8;
      if (shift === 32) {
        h = mixBlock(h, block);
        block = 0;
        shift = 0;
      }
    }
  }
  if (shift !== 0) {
    let k = Math.imul(block, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
