/// <reference types="@webgpu/types" />
/**
 * The WebGPU runtime under the kernels: the device, a buffer pool, pipeline cache and a dispatch queue.
 *
 * - Buffers come from a pool of size classes (powers of two up to 4 MiB, then multiples of 4 MiB) and go
 *   back to it when their `GpuArray` is released (refcount, scope end) or garbage-collected
 *   (FinalizationRegistry), so steady training loops reuse the same buffers.
 * - Dispatches are recorded into one command encoder and submitted in batches (every SUBMIT_EVERY
 *   dispatches, and before anything that must see their results: a read, an upload). Kernel parameters go
 *   into one uniform "arena" per batch (256-byte slots), written with one writeBuffer just before the
 *   submit. Queue operations run in order, so a buffer released while a pending dispatch still reads it can
 *   only be rewritten by work queued after that dispatch.
 * - Reads copy into a mappable staging buffer and await mapAsync: the only waits in the backend.
 *
 * No Node-only import here: browsers pass `navigator.gpu` in.
 */
import type { BackendName } from '../backend.js';
import { RefCountedArray } from '../memory.js';

const MAX_BATCH = 64;
/**
 * Dispatches per submit: small enough that the GPU starts on a step while the host is still encoding the
 * rest of it (encoding ~1,000 dispatches of a training step takes milliseconds), large enough that submits
 * stay few.
 */
const SUBMIT_EVERY = MAX_BATCH;
const SLOT = 256;


/** Size-class pool of storage buffers. */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Bytes in every buffer this pool created (free or in use), and their count. */
  allocatedBytes = 0;
  allocatedBuffers = 0;
  inUseBytes = 0;
  peakInUseBytes = 0;

  constructor(private readonly device: GPUDevice) {}

  static sizeClass(bytes: number): number {
    const b = Math.max(bytes, 16);
    if (b <= 4 << 20) return 2 ** Math.ceil(Math.log2(b));
    return Math.ceil(b / (4 << 20)) * (4 << 20);
  }

  take(bytes: number): { buffer: GPUBuffer; cap: number } {
    const cap = BufferPool.sizeClass(bytes);
    const list = this.free.get(cap);
    let buffer = list?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size: cap, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      this.allocatedBytes += cap;
      this.allocatedBuffers++;
    }
    this.inUseBytes += cap;
    this.peakInUseBytes = Math.max(this.peakInUseBytes, this.inUseBytes);
    return { buffer, cap };
  }

  put(buffer: GPUBuffer, cap: number): void {
    this.inUseBytes -= cap;
    let list = this.free.get(cap);
    if (!list) { list = []; this.free.set(cap, list); }
    list.push(buffer);
  }

  /** Destroys the free buffers (memory back to the driver). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) { this.allocatedBytes -= b.size; this.allocatedBuffers--; b.destroy(); }
    }
    this.free.clear();
  }
}

/** A float32 array in a pooled GPU buffer. */
export class GpuArray extends RefCountedArray {
  readonly device: BackendName = 'webgpu';
  private readonly buf: GPUBuffer;

  constructor(pool: BufferPool, length: number, private readonly rt: Runtime) {
    const { buffer, cap } = pool.take(length * 4);
    super(length, () => pool.put(buffer, cap));
    this.buf = buffer;
  }

  get buffer(): GPUBuffer {
    if (this.released) throw new Error('webgpu: a tensor was used after it was disposed (its buffer is back in the pool)');
    return this.buf;
  }

  read(): Promise<Float32Array> {
    return this.rt.read(this);
  }
}

export type ParamType = 'u32' | 'i32' | 'f32';

/** A compiled kernel: WGSL with `struct Params` at binding 0, then storage buffers at 1…n in order. */
export interface Kernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  params: [string, ParamType][];
}

export interface AdapterDescription { vendor: string; architecture: string; device: string; description: string }

export class Runtime {
  readonly pool: BufferPool;
  private readonly kernels = new Map<string, Kernel>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arenaHost = new ArrayBuffer(MAX_BATCH * SLOT);
  private readonly arenaU32 = new Uint32Array(this.arenaHost);
  private readonly arenaI32 = new Int32Array(this.arenaHost);
  private readonly arenaF32 = new Float32Array(this.arenaHost);
  private readonly arenas: GPUBuffer[] = [];
  private arenaIndex = 0;
  private slots = 0;
  /** Dispatches and submits so far (for tests and the benchmark). */
  dispatches = 0;
  submits = 0;
  private readonly dummy: GPUBuffer;
  /** Objects that must live as long as the device (the GPU instance, the adapter). */
  keepAlive: unknown[] = [];

  constructor(readonly device: GPUDevice, readonly adapter: AdapterDescription) {
    this.pool = new BufferPool(device);
    this.dummy = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    device.addEventListener?.('uncapturederror', (e) => {
      console.error(`webgpu: ${(e as GPUUncapturedErrorEvent).error.message}`);
    });
  }

  kernel(key: string, params: [string, ParamType][], wgsl: () => string): Kernel {
    let k = this.kernels.get(key);
    if (!k) {
      const struct = params.length
        ? `struct Params {\n${params.map(([n, t]) => `  ${n}: ${t},`).join('\n')}\n}\n@group(0) @binding(0) var<uniform> P: Params;\n`
        : '';
      const code = struct + wgsl();
      const module = this.device.createShaderModule({ code });
      // An explicit layout from the declarations ('auto' would drop bindings a variant does not use).
      const entries: GPUBindGroupLayoutEntry[] = [];
      for (const m of code.matchAll(/@binding\((\d+)\)\s*var<(uniform|storage, read_write|storage, read)>/g)) {
        const type: GPUBufferBindingType = m[2] === 'uniform' ? 'uniform' : m[2] === 'storage, read' ? 'read-only-storage' : 'storage';
        entries.push({ binding: Number(m[1]), visibility: GPUShaderStage.COMPUTE, buffer: { type } });
      }
      const layout = this.device.createBindGroupLayout({ entries });
      const pipeline = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' },
      });
      k = { pipeline, layout, params };
      this.kernels.set(key, k);
    }
    return k;
  }

  alloc(n: number): GpuArray {
    return new GpuArray(this.pool, n, this);
  }

  /** Records one dispatch. `buffers` bind at 1…n (null binds a dummy for an absent optional input). */
  dispatch(k: Kernel, values: number[], buffers: (GpuArray | null)[], groups: [number, number?, number?]): void {
    if (values.length !== k.params.length) throw new Error(`webgpu: kernel expects ${k.params.length} parameters, got ${values.length}`);
    if (this.slots === MAX_BATCH) this.flush();
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    const base = (this.slots * SLOT) / 4;
    k.params.forEach(([, t], i) => {
      if (t === 'f32') this.arenaF32[base + i] = values[i];
      else if (t === 'i32') this.arenaI32[base + i] = values[i];
      else this.arenaU32[base + i] = values[i];
    });
    const entries: GPUBindGroupEntry[] = [];
    if (k.params.length) entries.push({ binding: 0, resource: { buffer: this.arena(), offset: this.slots * SLOT, size: SLOT } });
    buffers.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b ? b.buffer : this.dummy } }));
    this.slots++;
    const bg = this.device.createBindGroup({ layout: k.layout, entries });
    this.pass.setPipeline(k.pipeline);
    this.pass.setBindGroup(0, bg);
    this.pass.dispatchWorkgroups(groups[0], groups[1] ?? 1, groups[2] ?? 1);
    this.dispatches++;
    if (this.slots >= SUBMIT_EVERY) this.flush();
  }

  private arena(): GPUBuffer {
    while (this.arenas.length <= this.arenaIndex) {
      this.arenas.push(this.device.createBuffer({ size: MAX_BATCH * SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }));
    }
    return this.arenas[this.arenaIndex];
  }

  /** Submits the recorded dispatches. */
  flush(): void {
    if (!this.encoder) return;
    this.pass?.end();
    this.pass = null;
    if (this.slots) this.device.queue.writeBuffer(this.arena(), 0, this.arenaHost, 0, this.slots * SLOT);
    this.device.queue.submit([this.encoder.finish()]);
    this.submits++;
    this.encoder = null;
    this.slots = 0;
    // Alternate arenas so a writeBuffer never waits on the batch just submitted.
    this.arenaIndex = (this.arenaIndex + 1) % 2;
  }

  upload(data: Float32Array | Int32Array, into?: GpuArray): GpuArray {
    const a = into ?? this.alloc(data.length);
    this.flush();
    if (data.length) this.device.queue.writeBuffer(a.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return a;
  }

  copyBuffer(src: GpuArray, dst: GpuArray, n: number): void {
    if (n === 0) return;
    this.pass?.end();
    this.pass = null;
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, n * 4);
  }

  async read(a: GpuArray): Promise<Float32Array> {
    const n = a.length;
    const out = new Float32Array(n);
    if (n === 0) return out;
    const staging = this.device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.pass?.end();
    this.pass = null;
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(a.buffer, 0, staging, 0, n * 4);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    out.set(new Float32Array(staging.getMappedRange()));
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Waits until the GPU has finished everything submitted so far. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }
}
