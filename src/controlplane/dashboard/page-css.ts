/**
 * The dashboard's style: a light theme with text contrast of at least 4.5:1 (WCAG AA), visible
 * focus outlines, state never shown by colour alone (failing edges are also dashed and say
 * "failing"), and a layout that fits a 1280-pixel laptop screen without horizontal scrolling.
 */
export const PAGE_CSS = `
:root { --fg: #1b1f24; --muted: #4a5360; --bg: #ffffff; --panel: #f4f6f8; --line: #c9d1d9; --accent: #0b57d0; --bad: #b3261e; --warn: #8a4b00; --good: #1e6b34; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, select:focus-visible, input:focus-visible, [tabindex]:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; z-index: 10; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 24px; padding: 10px 24px; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0; font-size: 20px; }
header h1 a { color: var(--fg); text-decoration: none; }
nav a { margin-right: 14px; font-weight: 600; }
nav a[aria-current="page"] { color: var(--fg); text-decoration: underline 3px; }
.window select { margin-left: 6px; font: inherit; }
#status { margin-left: auto; color: var(--muted); font-size: 13px; }
main { padding: 16px 24px 48px; max-width: 1400px; }
main:focus { outline: none; }
h2 { font-size: 18px; margin: 24px 0 8px; }
h2:first-child { margin-top: 4px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 16px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; color: var(--muted); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
tr.failing td, .bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.good { color: var(--good); }
.muted { color: var(--muted); }
.empty { padding: 16px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
.spark { display: block; }
.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.graph { width: 100%; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
.graph .node rect { fill: var(--panel); stroke: var(--fg); stroke-width: 1.2; }
.graph .node text { fill: var(--fg); font-size: 13px; }
.graph .node .name { font-weight: 700; }
.graph .edge path { fill: none; stroke: #57606a; stroke-width: 1.6; }
.graph .edge.failing path { stroke: var(--bad); stroke-width: 2.4; stroke-dasharray: 6 4; }
.graph .edge text { font-size: 12px; fill: var(--fg); paint-order: stroke; stroke: var(--bg); stroke-width: 4px; }
.graph .edge.failing text { fill: var(--bad); font-weight: 700; }
.graph marker path { fill: #57606a; }
.graph marker#arrow-bad path { fill: var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 16px; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.chart h3 { margin: 0 0 4px; font-size: 14px; }
.backend meter { width: 80px; height: 12px; vertical-align: middle; }
.backend { white-space: nowrap; }
.tag { display: inline-block; padding: 0 6px; border: 1px solid var(--line); border-radius: 4px; font-size: 12px; margin: 0 4px 2px 0; }
.login { max-width: 480px; margin: 48px auto; }
.login input { display: block; width: 100%; font: inherit; padding: 8px; margin: 4px 0 12px; }
.login button, button { font: inherit; padding: 6px 14px; }
.error { color: var(--bad); font-weight: 600; }
@media (max-width: 900px) { main { padding: 12px; } th, td { padding: 4px 6px; } }
`;
