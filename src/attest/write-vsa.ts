import { loadSigningKeyFile } from '../crypto/keyfiles.js';
import type { VerifyReport } from '../verify/report.js';
import { VERSION_TEXT } from './version.js';
import { writeAttestation } from './envelope.js';
import { VSA_STATEMENT_SCHEMA } from './schemas.js';
import { vsaStatement } from './vsa.js';

/**
 * `intoto verify --vsa FILE --vsa-key KEY`: the VSA of a verification, signed and written.
 * @throws CryptoError (the key), IoError, UsageError (overlapping final products)
 */
export async function writeVerificationSummary(options: {
  readonly file: string;
  readonly keyPath: string;
  readonly report: VerifyReport;
  readonly layoutPath: string;
  readonly cwd: string;
  readonly finalProducts: readonly string[] | undefined;
  readonly exclude: readonly string[];
  readonly verifierId: string;
  readonly resourceUri?: string;
}): Promise<void> {
  const statement = await vsaStatement({
    report: options.report,
    layoutPath: options.layoutPath,
    cwd: options.cwd,
    finalProducts: options.finalProducts,
    exclude: options.exclude,
    verifierId: options.verifierId,
    verifierVersion: VERSION_TEXT,
    ...(options.resourceUri === undefined ? {} : { resourceUri: options.resourceUri }),
    timeVerified: new Date(),
  });
  // Read only now: no inspection ran while the key was in memory.
  const key = loadSigningKeyFile(options.keyPath);
  writeAttestation(options.file, statement, VSA_STATEMENT_SCHEMA, [key]);
}
