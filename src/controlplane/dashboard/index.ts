/** The dashboard (issue 10): the control plane's read-only web view of the fleet. */
export { startDashboard, isLoopback, DEFAULT_DASHBOARD_HOST, DEFAULT_DASHBOARD_PORT } from './dashboard.js';
export type { Dashboard, DashboardOptions } from './dashboard.js';
