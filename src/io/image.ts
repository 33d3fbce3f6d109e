/**
 * Decoding PNG and JPEG files (pure JS: pngjs, jpeg-js) to 8-bit RGBA, keeping what the file says about
 * its color: a grayscale PNG or a one-component JPEG is reported as 1 channel, everything else as 3.
 * The format is taken from the file's first bytes, not its extension.
 */
import { readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export interface DecodedImage {
  width: number;
  height: number;
  /** Channels the file stores color in: 1 (grayscale) or 3 (color; palette and CMYK count as color). */
  channels: 1 | 3;
  /** Whether the file has transparency (alpha channel or tRNS). */
  alpha: boolean;
  /** width×height×4 bytes, RGBA. */
  rgba: Uint8Array;
  format: 'png' | 'jpeg';
}

export function sniffFormat(bytes: Uint8Array): 'png' | 'jpeg' | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47
    && bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a && bytes[7] === 0x0a) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

/** Decodes PNG or JPEG bytes; errors are one line starting with `name`. */
export function decodeImage(bytes: Uint8Array, name: string): DecodedImage {
  const format = sniffFormat(bytes);
  if (format === null) {
    throw new Error(`${name}: not a PNG or JPEG image (${bytes.length === 0 ? 'empty file' : 'unrecognised header'}; corrupt?)`);
  }
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'png') {
    let png;
    try {
      png = PNG.sync.read(buf);
    } catch (e) {
      throw new Error(`${name}: corrupt or unsupported PNG (${oneLine(e)})`);
    }
    const expected = png.width * png.height * 4;
    if (!(png.width > 0 && png.height > 0) || png.data.length !== expected) {
      throw new Error(`${name}: corrupt PNG (${png.data.length} bytes of pixels for ${png.width}×${png.height})`);
    }
    return {
      width: png.width, height: png.height, channels: png.color ? 3 : 1, alpha: !!png.alpha,
      rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength), format,
    };
  }
  const components = jpegComponents(buf);
  if (components === null) throw new Error(`${name}: corrupt JPEG (no frame header)`);
  let img;
  try {
    img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, tolerantDecoding: false });
  } catch (e) {
    throw new Error(`${name}: corrupt or unsupported JPEG (${oneLine(e)})`);
  }
  if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new Error(`${name}: corrupt JPEG (no image data)`);
  }
  return { width: img.width, height: img.height, channels: components === 1 ? 1 : 3, alpha: false, rgba: img.data, format };
}

/** Reads and decodes an image file; errors are one line naming the file. */
export function readImage(path: string): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${oneLine(e)})`);
  }
  return decodeImage(bytes, path);
}

/** The component count of a JPEG's frame header (SOFn), or null if there is none before the scan. */
export function jpegComponents(b: Uint8Array): number | null {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
    if (marker === 0xda || marker === 0xd9) return null; // scan or end before any frame
    const len = (b[i + 2] << 8) | b[i + 3];
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return i + 9 < b.length ? b[i + 9] : null;
    i += 2 + len;
  }
  return null;
}

function oneLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
