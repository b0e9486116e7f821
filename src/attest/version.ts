/** The version written into attestations (builder and verifier versions); as `--version` prints. */
export const VERSION_TEXT = '0.1.0';
