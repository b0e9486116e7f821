import { mkdtempSync, rmSync } from 'node:fs';
import { onInterrupt } from '../io/interrupt.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError, ioError } from '../errors.js';
import type { PublicKey } from '../crypto/keys.js';
import type { SandboxMode } from '../runner/sandbox.js';
import type { CheckName, CheckTiming, VerifyEvent } from './report.js';

/**
 * What one verification run shares across layouts (the root and its sublayouts): the
 * resolved options, the warnings, the timing of each check, the caps on total work, and the
 * verifier's work area (a fresh temporary directory, created only when an inspection needs it
 * and removed at the end).
 */

/** Caps on the work one verification may do (THREATS.md invariant 3). */
export const VERIFY_LIMITS = Object.freeze({
  /** Link files read in total, across all sublayouts. */
  linkFiles: 10_000,
  /** Layouts verified in total (the root and every sublayout). */
  layouts: 256,
  /** How deeply sublayouts may nest under the root. */
  sublayoutDepth: 8,
});

export interface SessionOptions {
  readonly layoutKeys: readonly PublicKey[];
  readonly layoutThreshold: number | undefined;
  readonly params: ReadonlyMap<string, string>;
  readonly finalProducts: readonly string[] | undefined;
  /** Files left out of the default final product (layout, key files). */
  readonly excludeFromFinalProducts: readonly string[];
  readonly inspectionTimeoutSeconds: number | undefined;
  readonly allowSublayoutInspections: boolean;
  readonly sandbox: SandboxMode;
  readonly now: number;
  readonly cwd: string;
  /** Files no inspection may read (a signing key the verifier holds), hidden as runner keys are. */
  readonly hide?: readonly string[];
}

export class Session {
  readonly warnings: string[] = [];
  readonly timings: CheckTiming[] = [];
  private linkFiles = 0;
  private layouts = 0;
  private workArea: string | undefined;
  private forgetWorkArea: () => void = () => undefined;

  constructor(
    readonly options: SessionOptions,
    private readonly onEvent: ((event: VerifyEvent) => void) | undefined,
  ) {}

  /** Records a warning (kept in the report) and reports it. */
  warn(message: string): void {
    this.warnings.push(message);
    this.emit({ kind: 'warning', message });
  }

  /** Reports a note (shown with -v; not kept). */
  note(message: string): void {
    this.emit({ kind: 'note', message });
  }

  private emit(event: VerifyEvent): void {
    // A listener that throws must not change the verdict, nor crash us.
    try {
      this.onEvent?.(event);
    } catch {
      // ignored on purpose
    }
  }

  /** Runs one named check for the layout at `layout`, timing it. Rethrows what it throws. */
  async check<T>(check: CheckName, layout: string, run: () => T | Promise<T>): Promise<T> {
    this.emit({ kind: 'check', check, layout });
    const start = performance.now();
    try {
      return await run();
    } finally {
      this.timings.push({ check, layout, ms: Math.round((performance.now() - start) * 1000) / 1000 });
    }
  }

  /** Counts one link file read. @throws IoError E_LIMIT past {@link VERIFY_LIMITS}.linkFiles */
  countLinkFile(file: string): void {
    if (++this.linkFiles > VERIFY_LIMITS.linkFiles) {
      throw new IoError('E_LIMIT', `${file}: more than ${VERIFY_LIMITS.linkFiles} link files in one verification`, {
        context: { file },
      });
    }
  }

  /** Counts one layout verified. @throws IoError E_LIMIT past {@link VERIFY_LIMITS}.layouts */
  countLayout(file: string): void {
    if (++this.layouts > VERIFY_LIMITS.layouts) {
      throw new IoError('E_LIMIT', `${file}: more than ${VERIFY_LIMITS.layouts} layouts and sublayouts in one verification`, {
        context: { file },
      });
    }
  }

  /**
   * A fresh, empty directory under the work area (created on first use in the system's temp
   * directory, never in the verifier's working directory).
   * @throws IoError E_IO
   */
  scratchDir(): string {
    if (this.workArea === undefined) {
      try {
        this.workArea = mkdtempSync(join(tmpdir(), 'intoto-verify-'));
      } catch (error) {
        throw ioError(join(tmpdir(), 'intoto-verify-*'), error, 'cannot create the verifier work area');
      }
      // Removed on an interruption too (Ctrl-C during an inspection), not only by cleanup().
      const area = this.workArea;
      this.forgetWorkArea = onInterrupt(() => {
        rmSync(area, { recursive: true, force: true });
      });
    }
    const prefix = join(this.workArea, 'scratch-');
    try {
      return mkdtempSync(prefix);
    } catch (error) {
      throw ioError(prefix, error, 'cannot create a scratch directory');
    }
  }

  /** Removes the work area and everything in it. Never throws. */
  cleanup(): void {
    this.forgetWorkArea();
    if (this.workArea === undefined) return;
    try {
      rmSync(this.workArea, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      this.warn(`cannot remove the verifier work area ${this.workArea}: ${(error as Error).message}`);
    }
    this.workArea = undefined;
  }
}
