// Checks that an image file exists, is non-empty and (optionally) has a parseable, untruncated header, without decoding pixels.
import { open, stat } from 'node:fs/promises';
import type { ImageCheckLevel, ProblemKind } from './types.js';

export type ImageFormat = 'jpeg' | 'png' | 'pgm' | 'ppm' | 'gif' | 'bmp' | 'webp';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

export type ImageCheckResult =
  | { ok: true; sizeBytes: number; header?: ImageHeader; warning?: { kind: ProblemKind; message: string } }
  | { ok: false; kind: ProblemKind; message: string };

/** Bytes read from the start of a file to find the header (JPEG frame headers can sit after large EXIF blocks). */
const HEAD_BYTES = 256 * 1024;
const TAIL_BYTES = 64;

export async function checkImageFile(path: string, level: ImageCheckLevel = 'header'): Promise<ImageCheckResult> {
  if (level === 'none') return { ok: true, sizeBytes: 0 };
  let sizeBytes: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return { ok: false, kind: 'missing-file', message: 'not a regular file' };
    sizeBytes = st.size;
  } catch {
    return { ok: false, kind: 'missing-file', message: 'file does not exist' };
  }
  if (sizeBytes === 0) return { ok: false, kind: 'empty-file', message: 'file is empty (0 bytes)' };
  if (level === 'exists') return { ok: true, sizeBytes };

  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(Math.min(HEAD_BYTES, sizeBytes));
    await handle.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(TAIL_BYTES, sizeBytes));
    await handle.read(tail, 0, tail.length, sizeBytes - tail.length);
    const header = parseImageHeader(head);
    if (!header) return { ok: false, kind: 'unreadable-image', message: `unrecognised or corrupt image header (${sizeBytes} bytes)` };
    if (header.width <= 0 || header.height <= 0) {
      return { ok: false, kind: 'unreadable-image', message: `${header.format} header has size ${header.width}x${header.height}` };
    }
    const truncation = truncationReason(header, head, tail, sizeBytes);
    if (truncation) return { ok: true, sizeBytes, header, warning: { kind: 'truncated-image', message: truncation } };
    return { ok: true, sizeBytes, header };
  } finally {
    await handle.close();
  }
}

/** Parses the dimensions from the first bytes of an image; undefined when the format is unknown or the header corrupt. */
export function parseImageHeader(buf: Buffer): ImageHeader | undefined {
  if (buf.length >= 4 && buf[0] === 0xff && buf[1] === 0xd8) return parseJpeg(buf);
  if (buf.length >= 24 && buf.readUInt32BE(0) === 0x89504e47 && buf.readUInt32BE(4) === 0x0d0a1a0a) {
    if (buf.toString('latin1', 12, 16) !== 'IHDR') return undefined;
    return { format: 'png', width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
  }
  if (buf.length >= 2 && buf[0] === 0x50 && (buf[1] === 0x32 || buf[1] === 0x35 || buf[1] === 0x33 || buf[1] === 0x36))
    return parseNetpbm(buf);
  if (buf.length >= 10 && buf.toString('latin1', 0, 4) === 'GIF8') {
    return { format: 'gif', width: buf.readUInt16LE(6), height: buf.readUInt16LE(8) };
  }
  if (buf.length >= 26 && buf[0] === 0x42 && buf[1] === 0x4d) {
    return { format: 'bmp', width: buf.readInt32LE(18), height: Math.abs(buf.readInt32LE(22)) };
  }
  if (buf.length >= 30 && buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WEBP') return parseWebp(buf);
  return undefined;
}

function parseJpeg(buf: Buffer): ImageHeader | undefined {
  let pos = 2;
  while (pos + 4 <= buf.length) {
    if (buf[pos] !== 0xff) return undefined;
    const marker = buf[pos + 1]!;
    if (marker === 0xff) {
      pos += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      pos += 2;
      continue;
    }
    const length = buf.readUInt16BE(pos + 2);
    if (length < 2) return undefined;
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (pos + 9 > buf.length) return undefined;
      return { format: 'jpeg', height: buf.readUInt16BE(pos + 5), width: buf.readUInt16BE(pos + 7) };
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before any frame header
    pos += 2 + length;
  }
  return undefined;
}

function parseNetpbm(buf: Buffer): ImageHeader | undefined {
  // P2/P5: width height maxval separated by whitespace, '#' comments allowed.
  const text = buf.toString('latin1', 2, Math.min(buf.length, 512));
  const fields: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.split('#')[0]!;
    fields.push(...line.trim().split(/\s+/).filter(Boolean));
    if (fields.length >= 3) break;
  }
  const [w, h, maxval] = fields.slice(0, 3).map(Number);
  if (!Number.isInteger(w) || !Number.isInteger(h) || !Number.isInteger(maxval) || maxval! <= 0) return undefined;
  const format: ImageFormat = buf[1] === 0x32 || buf[1] === 0x35 ? 'pgm' : 'ppm';
  return { format, width: w!, height: h! };
}

function parseWebp(buf: Buffer): ImageHeader | undefined {
  const chunk = buf.toString('latin1', 12, 16);
  if (chunk === 'VP8X') return { format: 'webp', width: 1 + buf.readUIntLE(24, 3), height: 1 + buf.readUIntLE(27, 3) };
  if (chunk === 'VP8L') {
    const bits = buf.readUInt32LE(21);
    return { format: 'webp', width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) };
  }
  if (chunk === 'VP8 ') return { format: 'webp', width: buf.readUInt16LE(26) & 0x3fff, height: buf.readUInt16LE(28) & 0x3fff };
  return undefined;
}

/** A reason to believe the file was cut short, or undefined. Cheap checks on the end marker and payload size only. */
function truncationReason(header: ImageHeader, head: Buffer, tail: Buffer, sizeBytes: number): string | undefined {
  if (header.format === 'jpeg') {
    // Encoders may pad after EOI; look for FF D9 anywhere in the last bytes.
    for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return undefined;
    return 'JPEG has no end-of-image marker (file truncated?)';
  }
  if (header.format === 'png') return tail.includes(Buffer.from('IEND', 'latin1')) ? undefined : 'PNG has no IEND chunk (file truncated?)';
  if (header.format === 'pgm' && head[1] === 0x35) {
    const needed = header.width * header.height;
    if (sizeBytes < needed) return `PGM payload needs ${needed} bytes, file has ${sizeBytes}`;
  }
  return undefined;
}
