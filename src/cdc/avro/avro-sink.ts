/**
 * A minimal Avro binary writer over one reused scratch buffer, for the CDC's text encoder
 * (text-encoder.ts). Its primitives write exactly the bytes the avsc version the registry library
 * ships (5.7) writes for the same value: zig-zag varints with avsc's integer / float arithmetic
 * split, strings through avsc's own loop up to 64 UTF-8 bytes and Node's UTF-8 writer beyond, floats and
 * doubles little-endian. Values are not checked here: the caller has checked them as avsc would.
 *
 * Contract: `start(header, capacity)` before each record (the buffer grows to `capacity` bytes
 * after the header: the caller's upper bound of the record's size), then the writes, then `take()`
 * for a Buffer of its own (the scratch is reused by the next record).
 */

/** avsc's `isSafeLong`: the longs it writes (±(2^53 − 2)). */
export function isSafeLong(n: number): boolean {
  return n >= -9007199254740990 && n <= 9007199254740990;
}

export class AvroSink {
  buf: Buffer = Buffer.allocUnsafe(1 << 16);
  pos = 0;

  start(header: Buffer, capacity: number): void {
    const need = header.length + capacity;
    if (need > this.buf.length) this.buf = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.pos = 0;
    this.raw(header);
  }

  /** The record written since `start`, copied out. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    return out;
  }

  /** Bytes already in Avro form. */
  raw(b: Buffer): void {
    const buf = this.buf;
    let pos = this.pos;
    for (let i = 0, n = b.length; i < n; i++) buf[pos++] = b[i] as number;
    this.pos = pos;
  }

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /** avsc's Tap.writeLong. */
  long(n: number): void {
    const buf = this.buf;
    let pos = this.pos;
    if (n >= -1073741824 && n < 1073741824) {
      let m = n >= 0 ? n << 1 : (~n << 1) | 1;
      for (;;) {
        const b = m & 0x7f;
        m >>= 7;
        if (!m) {
          buf[pos++] = b;
          break;
        }
        buf[pos++] = b | 0x80;
      }
    } else {
      let f = n >= 0 ? n * 2 : -n * 2 - 1;
      for (;;) {
        const b = f & 0x7f;
        f /= 128;
        if (!(f >= 1)) {
          buf[pos++] = b;
          break;
        }
        buf[pos++] = b | 0x80;
      }
    }
    this.pos = pos;
  }

  float(f: number): void {
    this.buf.writeFloatLE(f, this.pos);
    this.pos += 4;
  }

  double(d: number): void {
    this.buf.writeDoubleLE(d, this.pos);
    this.pos += 8;
  }

  bytes(b: Buffer): void {
    this.long(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  /** avsc's Tap.writeString (a lone surrogate included: its short-string loop writes it as is). */
  string(s: string): void {
    const len = Buffer.byteLength(s);
    this.long(len);
    const buf = this.buf;
    let pos = this.pos;
    this.pos += len;
    if (len > 64) {
      buf.write(s, pos, len, 'utf8');
      return;
    }
    for (let i = 0, l = s.length; i < l; i++) {
      let c1 = s.charCodeAt(i);
      let c2: number;
      if (c1 < 0x80) {
        buf[pos++] = c1;
      } else if (c1 < 0x800) {
        buf[pos++] = (c1 >> 6) | 0xc0;
        buf[pos++] = (c1 & 0x3f) | 0x80;
      } else if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
        c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
        i++;
        buf[pos++] = (c1 >> 18) | 0xf0;
        buf[pos++] = ((c1 >> 12) & 0x3f) | 0x80;
        buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80;
        buf[pos++] = (c1 & 0x3f) | 0x80;
      } else {
        buf[pos++] = (c1 >> 12) | 0xe0;
        buf[pos++] = ((c1 >> 6) & 0x3f) | 0x80;
        buf[pos++] = (c1 & 0x3f) | 0x80;
      }
    }
  }
}
