import type { GlobalReport, MemberReport, ModelFinding, ModelFindingCode, ModelFindingKind } from './model-types.js';
import { Collector, findingCode, type OpBudget } from './pickle.js';
import type { PickleFinding } from './pickle-types.js';
import { GLOBAL_USES, judgeImport, type ModelPolicy } from './policy.js';

/** Caps on the work one file may cost (THREATS.md invariant 3); each has a default. */
export interface ModelLimits {
  /** Pickle opcodes read in one file, all its pickles together. */
  readonly maxPickleOps: number;
  /** Bytes a compressed stream (joblib's, a deflated zip member) may expand to. */
  readonly maxDecompressedBytes: number;
  /** Entries in one zip. */
  readonly maxZipEntries: number;
  /** Declared uncompressed size of one zip, all entries together. */
  readonly maxZipTotalBytes: number;
  /** Uncompressed / compressed size of one deflated entry (above 1 MiB). */
  readonly maxCompressionRatio: number;
  /** Archives inside archives (and pickles inside pickles). */
  readonly maxNesting: number;
  /** A safetensors header, an npy header, an ONNX file read whole. */
  readonly maxHeaderBytes: number;
  /** A member or text file read whole to recognise it. */
  readonly maxReadBytes: number;
  /** Files under one directory. */
  readonly maxFiles: number;
}

export const DEFAULT_MODEL_LIMITS: ModelLimits = {
  maxPickleOps: 20_000_000,
  maxDecompressedBytes: 2 * 1024 * 1024 * 1024,
  maxZipEntries: 100_000,
  maxZipTotalBytes: 1024 * 1024 * 1024 * 1024,
  maxCompressionRatio: 1000,
  maxNesting: 4,
  maxHeaderBytes: 100 * 1000 * 1000,
  maxReadBytes: 256 * 1024 * 1024,
  maxFiles: 100_000,
};

/**
 * What the format readers report into while one file is scanned: its members, globals and
 * findings, the policy, the caps, and the opcode budget all its pickles share.
 */
export class ScanContext {
  readonly members: MemberReport[] = [];
  readonly findings: ModelFinding[] = [];
  readonly notes: string[] = [];
  /** External data files an ONNX model reads (resolved paths, each checked). */
  readonly externalData: string[] = [];
  private readonly globals = new Map<string, GlobalReport>();
  readonly budget: OpBudget;

  constructor(
    readonly file: string,
    readonly policy: ModelPolicy,
    readonly limits: ModelLimits,
    /** The file's directory on disk (ONNX external data is resolved against it). */
    readonly directory: string | undefined,
  ) {
    this.budget = { remaining: limits.maxPickleOps, max: limits.maxPickleOps };
  }

  /** The same report, judged by another policy (a TorchScript archive's pickles). */
  withPolicy(policy: ModelPolicy): ScanContext {
    const view = Object.create(this) as ScanContext;
    Object.defineProperty(view, 'policy', { value: policy });
    return view;
  }

  member(report: MemberReport): void {
    if (this.members.length < 10_000) this.members.push(report);
  }

  note(text: string): void {
    if (!this.notes.includes(text)) this.notes.push(text);
  }

  /** A finding about `member` (or the file, ''). */
  finding(member: string, kind: ModelFindingKind, code: ModelFindingCode, reason: string, extra: { offset?: number; global?: string } = {}): void {
    if (this.findings.length >= 1000) return;
    this.findings.push({ file: this.file, member, kind, code, reason, ...extra });
  }

  /** The findings and imports a pickle scan of `member` collected, under `policy`. */
  absorb(member: string, sink: Collector, policy: ModelPolicy = this.policy): void {
    for (const f of sink.findings) this.addPickleFinding(member, f);
    for (const [name, { module, attr }] of sink.imports) {
      const key = `${member}\0${name}`;
      if (this.globals.has(key)) continue;
      const verdict = judgeImport(policy, module, attr);
      this.globals.set(key, {
        name,
        member,
        verdict: verdict.allowed ? 'allowed' : verdict.never ? 'never-allowed' : 'not-allowed',
        allowedUses: verdict.allowed ? GLOBAL_USES.filter((u) => verdict.entry.uses.has(u)) : [],
      });
    }
  }

  addPickleFinding(member: string, f: PickleFinding): void {
    if (this.findings.length >= 1000) return;
    const base = { file: this.file, member, offset: f.offset, opcode: f.opcode, kind: f.kind, code: findingCode(f), reason: f.reason };
    const withGlobal = f.global === undefined ? base : { ...base, global: f.global };
    this.findings.push(f.never ? { ...withGlobal, never: true } : withGlobal);
  }

  get globalReports(): GlobalReport[] {
    return [...this.globals.values()];
  }
}
