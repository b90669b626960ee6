/**
 * Protobuf wire format written into ONE growable buffer: the few field kinds the warehouse's fact
 * rows use (varint int64/int32, double, string), byte for byte as protobufjs's BufferWriter writes
 * them (the same LongBits arithmetic for int64 numbers, Long's two's complement for int64 text, a
 * varint tag before each field). Held equal to protobufjs by
 * test/sinks/warehouse/warehouse-bigquery-fact-encoder.test.ts over every field kind.
 *
 * Why not protobufjs itself: it encodes from an object per row (built first, then walked through
 * its reflection), one buffer per row. Building and encoding the fact rows that way cost 11–12 µs
 * of CPU an event, this writer with fact-encoder.ts 2.5–3 µs (16,384 of the bench's events, one
 * process, 2026-12-07; docs/warehouse.md, BigQuery on the Storage Write API).
 *
 * One difference, outside what the service takes: a string holding a lone surrogate (not valid
 * UTF-16) is written as Node's UTF-8 encoder writes it (U+FFFD), as protobufjs also does for
 * strings of 40 characters or more; protobufjs writes shorter ones as invalid UTF-8.
 */

const TWO_32 = 4294967296;

export class ProtoBuffer {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Makes room for `n` more bytes (the buffer doubles; what was written is kept). */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** An unsigned 32-bit varint (protobufjs `uint32`; a field's tag, a length). */
  uint32(value: number): void {
    this.ensure(5);
    let v = value >>> 0;
    const b = this.buf;
    let p = this.pos;
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** protobufjs `int32`: a negative value sign-extended to 10 bytes. */
  int32(value: number): void {
    if (value < 0) this.int64Number(value);
    else this.uint32(value);
  }

  /** protobufjs `int64` of a number (LongBits.fromNumber: the integer part, two's complement). */
  int64Number(value: number): void {
    if (value >= 0 && value < TWO_32) {
      this.uint32(value);
      return;
    }
    if (value === 0 || Number.isNaN(value)) {
      this.uint32(0);
      return;
    }
    const sign = value < 0;
    const abs = sign ? -value : value;
    let lo = abs >>> 0;
    let hi = ((abs - lo) / TWO_32) >>> 0;
    if (sign) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
      if (++lo > 4294967295) {
        lo = 0;
        if (++hi > 4294967295) hi = 0;
      }
    }
    this.varint64(lo, hi);
  }

  /**
   * protobufjs `int64` of decimal text (Long.fromString: wrapped to 64 bits, two's complement).
   * Text of up to 15 characters is a number first, as row-encoding.ts `encode` does.
   */
  int64Text(value: string): void {
    if (value.length <= 15) {
      this.int64Number(Number(value));
      return;
    }
    const bits = BigInt.asUintN(64, BigInt(value));
    this.varint64(Number(bits & 0xffffffffn), Number(bits >> 32n));
  }

  /** protobufjs `double`: 8 bytes, little-endian IEEE 754. */
  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** protobufjs `string`: its UTF-8 byte length as a varint, then the bytes. */
  string(value: string): void {
    const n = value.length;
    if (n < 43) {
      // At most 3 bytes per UTF-16 unit: 126 bytes, so the length is one byte, patched after.
      this.ensure(1 + 3 * n);
      const b = this.buf;
      const at = this.pos;
      let p = at + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i < n) p = at + 1 + b.write(value, at + 1);
      b[at] = p - at - 1;
      this.pos = p;
      return;
    }
    const len = Buffer.byteLength(value);
    this.uint32(len);
    this.ensure(len);
    this.buf.write(value, this.pos);
    this.pos += len;
  }

  /** protobufjs writeVarint64 of (lo, hi). */
  private varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (hi) {
      b[p++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      b[p++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }
}
