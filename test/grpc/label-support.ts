/**
 * Whether MeshMetrics keeps a numeric gRPC code (`'14'`) in the `status_code` label. Today its
 * label normalization keeps only three-digit HTTP statuses (gRPC codes become `''`); the gRPC
 * edge records the code all the same, and the tests assert it as soon as the label keeps it.
 */
import { normalizeStatus } from '../../src/observability/metrics-labels.js';

export function metricsLabelKeepsGrpcCode(): boolean {
  return normalizeStatus('14') === '14';
}
