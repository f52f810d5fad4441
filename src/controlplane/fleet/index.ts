/** The fleet view (issue 10): golden metrics at the control plane. */
export { createFleet } from './fleet.js';
export type { Fleet, FleetDeps, IngestResult } from './fleet.js';
export type { ReportingInstance } from './memory-figures.js';
export type * from './stat-body.js';
export { WINDOWS } from './stat-body.js';
