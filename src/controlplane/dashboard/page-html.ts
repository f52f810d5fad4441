/**
 * The dashboard's HTML: one page (the app draws the views into <main>), and the sign-in page
 * for a dashboard bound to a non-loopback address. No inline script or style (strict CSP).
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trellis — fleet</title>
<link rel="stylesheet" href="/vendor/uplot.css">
<link rel="stylesheet" href="/assets/app.css">
<script src="/vendor/uplot.js" defer></script>
<script src="/vendor/dagre.js" defer></script>
<script src="/assets/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <h1><a href="#/">Trellis</a></h1>
  <nav aria-label="Views">
    <a href="#/" data-nav="services">Services</a>
    <a href="#/topology" data-nav="topology">Topology</a>
  </nav>
  <label class="window">Window
    <select id="window">
      <option value="10s">10 seconds</option>
      <option value="1m" selected>1 minute</option>
      <option value="10m">10 minutes</option>
    </select>
  </label>
  <span id="status" role="status" aria-live="polite">Loading…</span>
</header>
<main id="main" tabindex="-1"><p>Loading…</p></main>
<noscript><p>The dashboard needs JavaScript. <code>trellis stat</code> shows the same figures in a terminal.</p></noscript>
</body>
</html>
`;

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function loginPage(failed: string | null): string {
  const message = failed === 'limited' ? 'Too many attempts: wait a few seconds and try again.' : failed !== null ? 'That is not the admin token.' : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trellis — sign in</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<main id="main" class="login">
  <h1>Trellis dashboard</h1>
  <p>This dashboard is bound to a non-loopback address: sign in with the control plane's admin token (the file <code>DIR/admin-token</code>).</p>
  ${message !== '' ? `<p class="error" role="alert">${escape(message)}</p>` : ''}
  <form method="post" action="/login">
    <label for="token">Admin token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
    <button type="submit">Sign in</button>
  </form>
</main>
</body>
</html>
`;
}
