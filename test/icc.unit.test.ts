// Decoding without the sRGB -> sRGB colour transform: which profiles count as sRGB, and that skipping it leaves the
// pixels unchanged on real photos with an embedded sRGB profile.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, probeImage } from '../src/core/image.js';
import { iccDescription, isSrgbProfile } from '../src/core/icc.js';
import { demoJpeg } from './helpers/server-fixture.js';

/** A minimal ICC profile: 128-byte header (colour space at 16), one 'desc' tag of the given type. */
function profile(space: string, desc: { type: 'desc' | 'mluc'; text: string }): Uint8Array {
  const tag =
    desc.type === 'desc'
      ? Buffer.concat([Buffer.from('desc\0\0\0\0'), u32(desc.text.length + 1), Buffer.from(`${desc.text}\0`, 'latin1')])
      : (() => {
          const text = Buffer.from(desc.text, 'utf16le').swap16();
          return Buffer.concat([Buffer.from('mluc\0\0\0\0'), u32(1), u32(12), Buffer.from('enUS'), u32(text.length), u32(28), text]);
        })();
  const header = Buffer.alloc(128);
  header.write(space, 16, 'latin1');
  const table = Buffer.concat([u32(1), Buffer.from('desc'), u32(144), u32(tag.length)]);
  return new Uint8Array(Buffer.concat([header, table, tag]));
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

describe('ICC profiles', () => {
  it('reads the description of v2 and v4 profiles and tells sRGB from other colour spaces', () => {
    expect(iccDescription(profile('RGB ', { type: 'desc', text: 'sRGB IEC61966-2.1' }))).toBe('sRGB IEC61966-2.1');
    expect(iccDescription(profile('RGB ', { type: 'mluc', text: 'sRGB built-in' }))).toBe('sRGB built-in');
    expect(isSrgbProfile(profile('RGB ', { type: 'mluc', text: 'sRGB built-in' }))).toBe(true);
    expect(isSrgbProfile(profile('RGB ', { type: 'mluc', text: 'Display P3' }))).toBe(false);
    expect(isSrgbProfile(profile('RGB ', { type: 'desc', text: 'Adobe RGB (1998)' }))).toBe(false);
    expect(isSrgbProfile(profile('CMYK', { type: 'desc', text: 'sRGB lookalike' }))).toBe(false);
    // Truncated or garbage profiles are not sRGB (their pixels get the colour transform).
    expect(iccDescription(new Uint8Array(40))).toBe('');
    expect(isSrgbProfile(profile('RGB ', { type: 'desc', text: 'sRGB IEC61966-2.1' }).subarray(0, 150))).toBe(false);
  });

  it('the demo photos embed sRGB: decoded as stored, the pixels equal the colour-managed decode', async () => {
    const jpeg = demoJpeg(1);
    const meta = await sharp(jpeg).metadata();
    expect(meta.icc).toBeDefined();
    expect(iccDescription(meta.icc!)).toMatch(/sRGB/);
    expect((await probeImage(jpeg)).srgbAsStored).toBe(true);
    const fast = await decodeImage(jpeg);
    const reference = await decodeImage(jpeg, { referenceDecode: true });
    expect([fast.width, fast.height]).toEqual([reference.width, reference.height]);
    expect(Buffer.compare(Buffer.from(fast.data), Buffer.from(reference.data))).toBe(0);
  });

  it('a JPEG tagged with another profile is still converted to sRGB', async () => {
    const raw = Buffer.alloc(64 * 64 * 3, 0);
    for (let i = 0; i < raw.length; i += 3) raw[i] = 200; // saturated red differs between colour spaces
    const p3 = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } })
      .withIccProfile('p3')
      .jpeg({ quality: 95 })
      .toBuffer();
    expect((await probeImage(p3)).srgbAsStored).toBe(false);
    const fast = await decodeImage(p3);
    const reference = await decodeImage(p3, { referenceDecode: true });
    expect(Buffer.compare(Buffer.from(fast.data), Buffer.from(reference.data))).toBe(0);
    const asStored = await sharp(p3).keepIccProfile().raw().toBuffer();
    expect(Buffer.compare(Buffer.from(fast.data), asStored)).not.toBe(0);
  });
});
