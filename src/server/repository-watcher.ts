// Watches the model repository (fs.watch, top-level fallback, periodic rescan) and runs one debounced rescan at a time.
import { watch, type FSWatcher } from 'node:fs';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log-types.js';

export interface RepositoryWatcherOptions {
  repository: string;
  /** fs.watch the repository. */
  watch: boolean;
  /** Periodic rescan in milliseconds; 0: none. */
  rescanMs: number;
  /** Quiet time after the last file event before rescanning. Default 300 ms. */
  debounceMs?: number;
  logger: Logger;
  /** What a change triggers (the registry's scan and hot swap); never run twice at once. */
  rescan(): Promise<void>;
}

export class RepositoryWatcher {
  private readonly options: RepositoryWatcherOptions;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private rescanning: Promise<void> | undefined;
  private closed = false;

  constructor(options: RepositoryWatcherOptions) {
    this.options = options;
    this.log = options.logger;
    this.debounceMs = options.debounceMs ?? 300;
  }

  start(): void {
    if (this.options.watch) this.watcher = this.watchRepository();
    if (this.options.rescanMs > 0) {
      this.rescanTimer = setInterval(() => this.schedule(0), this.options.rescanMs);
      this.rescanTimer.unref();
    }
  }

  /** Stops watching and waits for a rescan in progress. */
  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.rescanTimer);
    clearTimeout(this.debounceTimer);
    await this.rescanning?.catch(() => undefined);
  }

  /** Recursive where the platform has it; else the top level only, and the periodic rescan covers the rest. */
  private watchRepository(): FSWatcher | undefined {
    const { repository } = this.options;
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(repository, { recursive: true }, () => this.schedule());
    } catch (e) {
      try {
        watcher = watch(repository, () => this.schedule());
        this.log.debug(
          { repository, error: errorMessage(e) },
          'recursive fs.watch unavailable; watching the top level only, the periodic rescan covers the rest',
        );
      } catch (e2) {
        this.log.warn({ repository, error: errorMessage(e2) }, 'cannot watch the model repository; relying on the periodic rescan');
      }
    }
    watcher?.on('error', (e) => this.log.warn({ repository, error: errorMessage(e) }, 'repository watch error'));
    return watcher;
  }

  /** Debounced: a copy into the repository fires many events. */
  private schedule(delayMs = this.debounceMs): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      if (this.rescanning) {
        void this.rescanning.then(() => this.schedule());
        return;
      }
      this.rescanning = this.options
        .rescan()
        .catch((e: unknown) => this.log.warn({ repository: this.options.repository, error: errorMessage(e) }, 'repository rescan failed'))
        .finally(() => {
          this.rescanning = undefined;
        });
    }, delayMs);
  }
}
