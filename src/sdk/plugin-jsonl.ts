// Built-in sink `jsonl`: appends each result as one JSON faces event per line to a file, rotating it by size into
// path.1 ... path.N (path.1 the newest), the way logrotate names them; camera state changes are lines too.
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Type, definePlugin, type PluginFactory, type TSchema } from './plugin.js';
import { resultToFacesEvent } from './results.js';

export interface JsonlOptions {
  /** The file to append to (its folder is created). Required. */
  path: string;
  /** Rotate before a line would make the file larger than this, in bytes; 0 never rotates. Default 10485760 (10 MiB). */
  maxBytes: number;
  /** Rotated files kept (path.1 ... path.N, the oldest deleted); 0 truncates instead. Default 5. */
  maxFiles: number;
  /** Write only results with at least one face. Default true. */
  onlyWithFaces: boolean;
  /** Write camera state changes as `{"event":"camera-state",...}` lines. Default true. */
  includeEvents: boolean;
  /** `node` field of the lines. Default "" (left out). */
  nodeId: string;
}

/** The `jsonl` sink factory. */
export const jsonlPlugin: PluginFactory<JsonlOptions> = definePlugin<JsonlOptions>({
  name: 'jsonl',
  kind: 'sink',
  description: 'append results as JSON lines to a file, rotated by size',
  schema: Type.Object(
    {
      path: Type.String({ minLength: 1, default: '', description: 'The file to append to (its folder is created). Required.' }),
      maxBytes: Type.Integer({
        minimum: 0,
        default: 10 * 1024 * 1024,
        description: 'Rotate before a line would make the file larger than this, in bytes; 0 never rotates. Default 10485760 (10 MiB).',
      }),
      maxFiles: Type.Integer({
        minimum: 0,
        maximum: 1000,
        default: 5,
        description: 'Rotated files kept (path.1 ... path.N, the oldest deleted); 0 truncates instead. Default 5.',
      }),
      onlyWithFaces: Type.Boolean({ default: true, description: 'Write only results with at least one face. Default true.' }),
      includeEvents: Type.Boolean({
        default: true,
        description: 'Write camera state changes as `{"event":"camera-state",...}` lines. Default true.',
      }),
      nodeId: Type.String({ default: '', description: '`node` field of the lines. Default "" (left out).' }),
    } satisfies Record<keyof JsonlOptions, TSchema>,
    { additionalProperties: false, title: 'jsonl plugin options' },
  ),
  create({ options: o }) {
    const file = new RotatingFile(o.path, o.maxBytes, o.maxFiles);
    return {
      onStart: () => file.open(),
      async onResult(result, ctx) {
        if (o.onlyWithFaces && result.faces.length === 0) return;
        await file.append(JSON.stringify(resultToFacesEvent(result, ctx.streamId, o.nodeId !== '' ? o.nodeId : undefined)));
      },
      async onEvent(event) {
        if (!o.includeEvents) return;
        const { type, ...rest } = event;
        await file.append(JSON.stringify({ event: type, ...rest }));
      },
      onStop: () => file.close(),
      stats: () => file.counters(),
    };
  },
});

/** An append-only file with size rotation; appends are serialised, so lines never interleave. */
class RotatingFile {
  private handle: FileHandle | undefined;
  private size = 0;
  private tail: Promise<void> = Promise.resolve();
  private readonly count = { lines: 0, bytes: 0, rotations: 0 };

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly maxFiles: number,
  ) {}

  async open(): Promise<void> {
    if (this.handle) return;
    await mkdir(dirname(this.path), { recursive: true });
    this.handle = await open(this.path, 'a');
    this.size = (await stat(this.path)).size;
  }

  append(line: string): Promise<void> {
    const next = this.tail.then(() => this.write(`${line}\n`));
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Waits for pending lines and closes the file (a later append reopens it). */
  async close(): Promise<void> {
    await this.tail;
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  counters(): Record<string, number> {
    return { ...this.count, fileBytes: this.size };
  }

  private async write(text: string): Promise<void> {
    const bytes = Buffer.byteLength(text);
    if (this.maxBytes > 0 && this.size > 0 && this.size + bytes > this.maxBytes) await this.rotate();
    if (!this.handle) await this.open();
    await this.handle!.appendFile(text);
    this.size += bytes;
    this.count.lines += 1;
    this.count.bytes += bytes;
  }

  /** path -> path.1 -> ... -> path.N (the oldest removed); with maxFiles 0 the file is truncated. */
  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    if (this.maxFiles === 0) await rm(this.path, { force: true });
    else {
      await rm(`${this.path}.${this.maxFiles}`, { force: true });
      for (let i = this.maxFiles - 1; i >= 1; i -= 1) await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(() => undefined);
      await rename(this.path, `${this.path}.1`);
    }
    this.count.rotations += 1;
    this.size = 0;
  }
}
