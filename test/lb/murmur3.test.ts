import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur3 } from '../../src/lb/murmur3.js';

/** Straightforward byte-wise reference (the algorithm as published) to compare against. */
function reference(bytes: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const blocks = bytes.length >>> 2;
  for (let i = 0; i < blocks; i++) {
    let k = bytes[4 * i]! | (bytes[4 * i + 1]! << 8) | (bytes[4 * i + 2]! << 16) | (bytes[4 * i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    for (let i = rest - 1; i >= 0; i--) k = (k << 8) | bytes[tail + i]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

describe('murmur3', () => {
  it('matches published MurmurHash3_x86_32 test vectors', () => {
    assert.equal(murmur3('', 0), 0);
    assert.equal(murmur3('', 1), 0x514e28b7);
    assert.equal(murmur3('', 0xffffffff), 0x81f16f39);
    assert.equal(murmur3('\0\0\0\0', 0), 0x2362f9de);
    assert.equal(murmur3('aaaa', 0x9747b28c), 0x5a97808a);
    assert.equal(murmur3('Hello, world!', 0x9747b28c), 0x24884cba);
    assert.equal(murmur3('The quick brown fox jumps over the lazy dog', 0x9747b28c), 0x2fa826cd);
  });

  it('hashes the UTF-8 bytes, surrogate pairs and lone surrogates as TextEncoder does', () => {
    const samples = ['a', 'ab', 'abc', 'abcde', 'é', 'ü-ß', '日本語キー', '🎉', 'x🎉y', '\ud800', 'a\udc00b', '\ud83c', '10.0.0.1:80'];
    for (const s of samples) {
      for (const seed of [0, 7, 0xdeadbeef]) {
        assert.equal(murmur3(s, seed), reference(new TextEncoder().encode(s), seed), `${JSON.stringify(s)} seed ${seed}`);
      }
    }
  });
});
