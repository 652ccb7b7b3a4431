// Just enough of an ICC profile (ICC.1:2010 header and tag table) to tell whether it describes sRGB.

const ascii = (b: Uint8Array, at: number, n: number): string => String.fromCharCode(...b.subarray(at, at + n));

/** The profile's description ('desc' tag: v2 textDescriptionType or v4 multiLocalizedUnicodeType), or '' when unreadable. */
export function iccDescription(icc: Uint8Array): string {
  if (icc.length < 132) return '';
  const view = new DataView(icc.buffer, icc.byteOffset, icc.byteLength);
  const tags = view.getUint32(128);
  for (let i = 0; i < tags && 144 + i * 12 <= icc.length; i++) {
    const entry = 132 + i * 12;
    if (ascii(icc, entry, 4) !== 'desc') continue;
    const at = view.getUint32(entry + 4);
    const size = view.getUint32(entry + 8);
    if (at + size > icc.length || size < 12) return '';
    const type = ascii(icc, at, 4);
    if (type === 'desc') return ascii(icc, at + 12, Math.min(view.getUint32(at + 8), size - 12)).replace(/\0+$/, '');
    if (type === 'mluc' && size >= 28) {
      // First record: language, country, length in bytes, offset from the tag's start; UTF-16BE text.
      const length = view.getUint32(at + 20);
      const offset = view.getUint32(at + 24);
      if (offset + length > size) return '';
      let text = '';
      for (let k = 0; k + 1 < length; k += 2) text += String.fromCharCode(view.getUint16(at + offset + k));
      return text.replace(/\0+$/, '');
    }
    return '';
  }
  return '';
}

/**
 * Whether pixels tagged with this profile are sRGB already: an RGB profile whose description names sRGB (the
 * profile cameras and phones embed as "sRGB IEC61966-2.1"). Converting such pixels to sRGB is a near-identity
 * transform that costs more than the JPEG decode itself; any other profile (Display P3, Adobe RGB, CMYK) is converted.
 */
export function isSrgbProfile(icc: Uint8Array): boolean {
  return icc.length >= 20 && ascii(icc, 16, 4) === 'RGB ' && /\bsRGB\b/i.test(iccDescription(icc));
}
