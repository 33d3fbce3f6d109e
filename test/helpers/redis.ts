// A private redis-server on loopback for tests: a free port, its own folder, AOF on, no RDB snapshots.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const hasRedis = (): boolean => spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

export class TestRedis {
  private proc: ChildProcess | null = null;
  constructor(readonly port: number, readonly dir: string) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server and resolves once it accepts connections. */
  async start(): Promise<void> {
    const p = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
      '--dir', this.dir, '--protected-mode', 'yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start in 20 s:\n${log}`)), 20_000);
      p.stdout!.on('data', (d) => {
        log += String(d);
        if (/Ready to accept connections/.test(log)) { clearTimeout(timer); resolve(); }
      });
      p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited (${code}):\n${log}`)); });
    });
    p.removeAllListeners('exit');
  }

  /** Shuts redis-server down as a restart does (SIGTERM: it flushes the AOF and exits). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    this.proc = null;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGTERM'); });
  }
}
