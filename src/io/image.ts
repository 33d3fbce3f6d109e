/**
 * Decoding PNG and JPEG files (pure JS: pngjs, jpeg-js) to 8-bit RGBA, keeping what the file says about
 * its color: a grayscale PNG or a one-component JPEG is reported as 1 channel, everything else as 3.
 * The format is taken from the file's first bytes, not its extension.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { inflateSync } from 'node:zlib';
import { readRegularFile } from './confined.js';

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

/**
 * Largest image decoded: 2^25 pixels (32 MP, 128 MiB of RGBA; an 8K frame fits) and 16,384 pixels a side.
 * The dimensions are read from the header and checked before anything is decompressed, so a small file
 * that claims a huge image costs nothing.
 */
export const IMAGE_LIMITS = { maxPixels: 2 ** 25, maxSide: 16_384 } as const;

/** Width and height as the header states them (PNG IHDR, JPEG SOFn), or null if the header has none. */
export function imageHeaderSize(bytes: Uint8Array): { width: number; height: number } | null {
  const format = sniffFormat(bytes);
  if (format === 'png') {
    // signature, then the IHDR chunk: length, 'IHDR', width, height (big-endian)
    if (bytes.length < 24 || String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]) !== 'IHDR') return null;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { width: v.getUint32(16), height: v.getUint32(20) };
  }
  if (format === 'jpeg') {
    const sof = jpegFrameHeader(bytes);
    return sof && { width: sof.width, height: sof.height };
  }
  return null;
}

/** Decodes PNG or JPEG bytes; errors are one line starting with `name`. */
export function decodeImage(bytes: Uint8Array, name: string): DecodedImage {
  const format = sniffFormat(bytes);
  if (format === null) {
    throw new Error(`${name}: not a PNG or JPEG image (${bytes.length === 0 ? 'empty file' : 'unrecognised header'}; corrupt?)`);
  }
  const size = imageHeaderSize(bytes);
  if (size === null) throw new Error(`${name}: corrupt ${format === 'png' ? 'PNG (no IHDR header)' : 'JPEG (no frame header)'}`);
  if (size.width < 1 || size.height < 1 || size.width > IMAGE_LIMITS.maxSide || size.height > IMAGE_LIMITS.maxSide
    || size.width * size.height > IMAGE_LIMITS.maxPixels) {
    throw new Error(`${name}: header says ${size.width}×${size.height} pixels; images must be 1…${IMAGE_LIMITS.maxSide} a side ` +
      `and at most ${IMAGE_LIMITS.maxPixels} pixels`);
  }
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === 'png') {
    checkPngData(buf, name);
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
    img = jpeg.decode(buf, {
      useTArray: true, formatAsRGBA: true, tolerantDecoding: false,
      maxResolutionInMP: IMAGE_LIMITS.maxPixels / 1e6, maxMemoryUsageInMB: 1024,
    });
  } catch (e) {
    throw new Error(`${name}: corrupt or unsupported JPEG (${oneLine(e)})`);
  }
  if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 4) {
    throw new Error(`${name}: corrupt JPEG (no image data)`);
  }
  return { width: img.width, height: img.height, channels: components === 1 ? 1 : 3, alpha: false, rgba: img.data, format };
}

/**
 * Inflates a PNG's image data once, bounded by what its header promises, before the decoder sees it: a
 * zlib stream that is corrupt, too short, or inflates past the image's size (a zlib bomb) is refused here
 * (the decoder would take the first silently and inflate the last without limit).
 */
function checkPngData(b: Buffer, name: string): void {
  const width = b.readUInt32BE(16), height = b.readUInt32BE(20), depth = b[24], color = b[25], interlace = b[28];
  const samples = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[color];
  if (samples === undefined || ![1, 2, 4, 8, 16].includes(depth) || interlace > 1) {
    throw new Error(`${name}: corrupt or unsupported PNG (bit depth ${depth}, color type ${color}, interlace ${interlace} is not a PNG format)`);
  }
  const rowBytes = (w: number) => (w > 0 ? 1 + Math.ceil((w * samples * depth) / 8) : 0);
  let expected = height * rowBytes(width);
  if (interlace === 1) { // Adam7: seven reduced images
    expected = 0;
    for (const [x0, y0, dx, dy] of [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]) {
      expected += Math.ceil(Math.max(0, height - y0) / dy) * rowBytes(Math.ceil(Math.max(0, width - x0) / dx));
    }
  }
  const parts: Buffer[] = [];
  for (let i = 8; i + 8 <= b.length;) {
    const len = b.readUInt32BE(i), type = b.toString('latin1', i + 4, i + 8);
    if (i + 12 + len > b.length) throw new Error(`${name}: corrupt or unsupported PNG (chunk ${JSON.stringify(type)} runs past the end of the file)`);
    if (type === 'IDAT') parts.push(b.subarray(i + 8, i + 8 + len));
    if (type === 'IEND') break;
    i += 12 + len;
  }
  if (parts.length === 0) throw new Error(`${name}: corrupt or unsupported PNG (no image data)`);
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(parts), { maxOutputLength: Math.max(expected, 1) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${name}: corrupt or unsupported PNG (image data ${code === 'ERR_BUFFER_TOO_LARGE' ? `inflates past the ${expected} bytes a ${width}×${height} image holds` : `is not a valid zlib stream`})`);
  }
  if (raw.length < expected) throw new Error(`${name}: corrupt or unsupported PNG (image data holds ${raw.length} of the ${expected} bytes a ${width}×${height} image needs)`);
}

/** Reads and decodes an image file; errors are one line naming the file. */
export function readImage(path: string): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, { maxBytes: MAX_IMAGE_FILE_BYTES });
  } catch (e) {
    throw new Error(oneLine(e));
  }
  return decodeImage(bytes, path);
}

/** No image file is read past this size (compressed data of an image within IMAGE_LIMITS). */
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

/** The component count of a JPEG's frame header (SOFn), or null if there is none before the scan. */
export function jpegComponents(b: Uint8Array): number | null {
  return jpegFrameHeader(b)?.components ?? null;
}

/** A JPEG's frame header (SOFn): size and component count, or null if there is none before the scan. */
function jpegFrameHeader(b: Uint8Array): { width: number; height: number; components: number } | null {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
    if (marker === 0xda || marker === 0xd9) return null; // scan or end before any frame
    const len = (b[i + 2] << 8) | b[i + 3];
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      return i + 9 < b.length ? { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9] } : null;
    }
    i += 2 + len;
  }
  return null;
}

/** A decoder's error as one line; its own slips (a TypeError deep inside) say only that the data is damaged. */
function oneLine(e: unknown): string {
  if (e instanceof TypeError || e instanceof RangeError) return 'damaged data';
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
