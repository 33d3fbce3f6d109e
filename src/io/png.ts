/**
 * Writing images in [−1, 1] as 8-bit PNG (via pngjs): single images, and batches laid out as a grid.
 *
 * The byte of a value x is round((x + 1)·127.5) clamped to 0..255 (NaN → 0), the exact inverse of the
 * loaders' x = v/127.5 − 1. One channel gives a grayscale PNG, three an RGB PNG. Files are written
 * atomically: to a temporary file in the same folder, then renamed over the target, so a reader (or a
 * crash) never sees half a PNG.
 */
import { writeFileAtomic } from './files.js';
import { PNG } from 'pngjs';

export { writeFileAtomic };

/** Anything with NCHW / CHW float data and a shape: a Tensor, or a plain object. */
export interface ImageLike {
  readonly data: ArrayLike<number>;
  readonly shape: readonly number[];
}

/** An 8-bit raster, pixels interleaved row-major (H×W×channels). */
export interface Raster {
  width: number;
  height: number;
  /** 1 (gray), 3 (RGB) or 4 (RGBA). */
  channels: 1 | 3 | 4;
  pixels: Uint8Array;
}

export interface GridOptions {
  /** Images per row (default ceil(sqrt(B))). */
  nrow?: number;
  /** Pixels between cells and around the border (default 2). */
  padding?: number;
  /** Integer nearest-neighbour upscaling of each image (default 1); padding is not scaled. */
  scale?: number;
  /** Value of the padding in [−1, 1] (default 1: white lines, which keep black-background digits apart). */
  padValue?: number;
}

/** [−1, 1] → 0..255, rounded and clamped; NaN → 0. */
export function toByte(x: number): number {
  const v = Math.round((x + 1) * 127.5);
  return v > 255 ? 255 : v >= 0 ? v : 0;
}

/**
 * Lays out a batch [B, C, H, W] (or one image [C, H, W]) as a grid raster, torchvision style: `nrow` images
 * per row, `padding` pixels between and around them.
 */
export function imageGrid(images: ImageLike, opts: GridOptions = {}): Raster {
  const shape = images.shape;
  if (shape.length !== 3 && shape.length !== 4) {
    throw new Error(`imageGrid: expected images of shape [B, C, H, W] or [C, H, W], got [${shape.join(', ')}]`);
  }
  const [B, C, H, W] = shape.length === 4 ? shape : [1, ...shape];
  if (C !== 1 && C !== 3) throw new Error(`imageGrid: images need 1 or 3 channels, got ${C}`);
  if (B < 1 || H < 1 || W < 1) throw new Error(`imageGrid: empty batch [${shape.join(', ')}]`);
  if (images.data.length !== B * C * H * W) throw new Error(`imageGrid: ${images.data.length} values for shape [${shape.join(', ')}]`);
  const nrow = Math.max(1, Math.min(B, Math.floor(opts.nrow ?? Math.ceil(Math.sqrt(B)))));
  const pad = Math.max(0, Math.floor(opts.padding ?? 2));
  const s = Math.max(1, Math.floor(opts.scale ?? 1));
  const rows = Math.ceil(B / nrow);
  const cw = W * s, ch = H * s;
  const width = nrow * (cw + pad) + pad, height = rows * (ch + pad) + pad;
  const pixels = new Uint8Array(width * height * C).fill(toByte(opts.padValue ?? 1));
  const d = images.data;
  for (let b = 0; b < B; b++) {
    const x0 = pad + (b % nrow) * (cw + pad), y0 = pad + Math.floor(b / nrow) * (ch + pad);
    for (let y = 0; y < ch; y++) {
      const sy = Math.floor(y / s);
      const row = ((y0 + y) * width + x0) * C;
      for (let x = 0; x < cw; x++) {
        const sx = Math.floor(x / s);
        for (let c = 0; c < C; c++) pixels[row + x * C + c] = toByte(d[((b * C + c) * H + sy) * W + sx]);
      }
    }
  }
  return { width, height, channels: C as 1 | 3, pixels };
}

/** Encodes a raster as PNG bytes: gray, RGB or RGBA, 8 bits per sample. */
export function encodePng(r: Raster): Buffer {
  const { width, height, channels, pixels } = r;
  if (pixels.length !== width * height * channels) throw new Error(`encodePng: ${pixels.length} bytes for ${width}×${height}×${channels}`);
  // pngjs packs from RGB or RGBA input; expand gray to RGB and let it write colorType 0.
  let input: Buffer;
  if (channels === 1) {
    input = Buffer.alloc(width * height * 3);
    for (let i = 0, j = 0; i < pixels.length; i++, j += 3) input[j] = input[j + 1] = input[j + 2] = pixels[i];
  } else {
    input = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  }
  const png = new PNG({ width, height });
  png.data = input;
  return PNG.sync.write(png, {
    colorType: channels === 1 ? 0 : channels === 3 ? 2 : 6,
    inputColorType: channels === 4 ? 6 : 2,
    inputHasAlpha: channels === 4,
  });
}

/** Writes a raster to a PNG file atomically. */
export function saveRaster(path: string, r: Raster): void {
  writeFileAtomic(path, encodePng(r));
}

/** Saves one image [C, H, W] or [1, C, H, W] in [−1, 1] as a PNG (no padding), optionally upscaled. */
export function saveImage(path: string, image: ImageLike, opts: { scale?: number } = {}): void {
  const sh = image.shape;
  if (!(sh.length === 3 || (sh.length === 4 && sh[0] === 1))) {
    throw new Error(`saveImage: expected one image [C, H, W] or [1, C, H, W], got [${sh.join(', ')}]; use saveImageGrid for a batch`);
  }
  saveRaster(path, imageGrid(image, { padding: 0, scale: opts.scale }));
}

/** Saves a batch [B, C, H, W] in [−1, 1] as one PNG grid (see GridOptions). */
export function saveImageGrid(path: string, images: ImageLike, opts: GridOptions = {}): void {
  saveRaster(path, imageGrid(images, opts));
}
