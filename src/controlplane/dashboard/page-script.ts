/**
 * The dashboard's script (plain ES2017 for the browser, no build step): three views drawn into
 * <main> from `/api/stat`, polled every refreshMs — the services table with sparklines, the
 * topology (laid out by dagre, drawn as SVG, failing edges red, dashed and labelled, with the
 * same edges as a table for screen readers), and one service (uPlot charts over ten minutes,
 * routes with configured and live split, instances with labels, config ACK/NACK and
 * certificate expiry, what each instance sees of its destinations: breakers, endpoint health,
 * ejections). Updates replace only what changed and keep keyboard focus.
 *
 * Kept as a string (this file is served, not compiled into Trellis): no backticks or
 * template substitutions inside.
 */
export const PAGE_SCRIPT = String.raw`'use strict';
(function () {
  var main = document.getElementById('main');
  var statusEl = document.getElementById('status');
  var windowSel = document.getElementById('window');
  var refreshMs = 2000;
  var timer = null;
  var charts = {};
  var generation = 0;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; });
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '-';
    if (ms >= 1000) return (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + ' s';
    return (ms < 10 ? ms.toFixed(1) : Math.round(ms)) + ' ms';
  }
  function fmtRps(r) {
    return (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + ' rps';
  }
  function fmtPct(x) {
    return x === null || x === undefined ? '-' : (x * 100).toFixed(2) + ' %';
  }
  function fmtAgo(ms) {
    if (ms === null || ms === undefined) return '-';
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 90 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }
  function fmtExpiry(ms) {
    if (ms === null || ms === undefined) return '<span class="muted">unknown</span>';
    var h = (ms - Date.now()) / 3600000;
    var when = esc(new Date(ms).toISOString().replace('T', ' ').slice(0, 16)) + ' UTC';
    if (h < 0) return '<span class="bad">expired ' + when + '</span>';
    if (h < 24) return '<span class="warn">' + when + ' (in ' + Math.floor(h) + ' h)</span>';
    return when + ' <span class="muted">(in ' + Math.floor(h / 24) + ' d)</span>';
  }
  function labels(l) {
    var keys = Object.keys(l || {});
    if (keys.length === 0) return '<span class="muted">none</span>';
    return keys.map(function (k) { return '<span class="tag">' + esc(k) + '=' + esc(l[k]) + '</span>'; }).join('');
  }
  function figureCells(f) {
    if (!f || f.requests === 0) return '<td class="num">-</td><td class="num">-</td><td class="num">-</td><td class="num">-</td><td class="num">-</td>';
    var sr = f.successRate;
    var cls = sr !== null && sr < 0.95 ? ' bad' : '';
    return '<td class="num' + cls + '">' + fmtPct(sr) + '</td><td class="num">' + fmtRps(f.rps) + '</td><td class="num">' + fmtMs(f.latencyMs.p50) +
      '</td><td class="num">' + fmtMs(f.latencyMs.p95) + '</td><td class="num">' + fmtMs(f.latencyMs.p99) + '</td>';
  }
  var FIG_HEAD = '<th scope="col" class="num">Success</th><th scope="col" class="num">Rate</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th>';

  function sparkline(series, name) {
    if (!series || series.rps.length === 0) return '<span class="muted">-</span>';
    var w = 160, h = 28, max = Math.max.apply(null, series.rps.concat([0.001]));
    var pts = series.rps.map(function (v, i) {
      return (i * w / Math.max(1, series.rps.length - 1)).toFixed(1) + ',' + (h - 2 - (v / max) * (h - 4)).toFixed(1);
    }).join(' ');
    var last = series.rps[series.rps.length - 1];
    return '<svg class="spark" width="' + w + '" height="' + h + '" role="img" aria-label="' + esc(name) + ' request rate over the last 10 minutes, peak ' +
      esc(fmtRps(max)) + ', latest ' + esc(fmtRps(last)) + '"><polyline points="' + pts + '"/></svg>';
  }

  /** Replaces a container's content only when it changed, keeping keyboard focus where it was. */
  function patch(el, html) {
    if (el.innerHTML === html) return;
    var active = document.activeElement;
    var key = active && el.contains(active) ? active.getAttribute('data-key') || active.getAttribute('href') : null;
    el.innerHTML = html;
    if (key) {
      var again = el.querySelector('[data-key="' + CSS.escape(key) + '"]') || el.querySelector('[href="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
  }

  function section(id) {
    var el = document.getElementById(id);
    if (!el) {
      el = document.createElement('section');
      el.id = id;
      main.appendChild(el);
    }
    return el;
  }

  function getStat(params) {
    params.set('window', windowSel.value);
    return fetch('/api/stat?' + params.toString(), { headers: { accept: 'application/json' } }).then(function (res) {
      if (res.status === 401) { location.href = '/login'; throw new Error('signed out'); }
      return res.json().then(function (body) {
        if (res.status !== 200) throw new Error(body && body.error ? body.error.code + ': ' + body.error.message : 'HTTP ' + res.status);
        return body;
      });
    });
  }

  function noTraffic(body) {
    var any = body.services.some(function (s) { return s.figures && s.figures.requests > 0; });
    return any ? '' : '<p class="empty" data-testid="no-traffic">No traffic in the last ' + esc(body.window) + ' (' + body.reportingInstances +
      ' instances reporting). Figures appear a few seconds after requests flow through the mesh.</p>';
  }

  // ---- Services -------------------------------------------------------------------------
  function renderServices(body) {
    var rows = body.services.map(function (s) {
      var f = s.figures;
      var note = s.view === 'outbound' ? ' <span class="muted">(calls only: sent)</span>' : s.view === 'callers' ? ' <span class="muted">(as callers saw it)</span>' : '';
      return '<tr data-service="' + esc(s.name) + '" data-rps="' + (f ? f.rps : 0) + '"><th scope="row"><a href="#/service/' + encodeURIComponent(s.name) + '">' + esc(s.name) +
        '</a>' + note + '</th><td class="num">' + s.instances + '</td>' + figureCells(f) + '<td>' + sparkline(s.series, s.name) + '</td></tr>';
    }).join('');
    patch(section('services'), '<h2>Services</h2>' + noTraffic(body) + '<table><caption>Golden metrics per service over the last ' + esc(body.window) +
      '</caption><thead><tr><th scope="col">Service</th><th scope="col" class="num">Instances</th>' + FIG_HEAD + '<th scope="col">Last 10 minutes</th></tr></thead><tbody>' +
      (rows || '<tr><td colspan="8">No services yet: apply Service documents or start instances.</td></tr>') + '</tbody></table>');
  }

  // ---- Topology -------------------------------------------------------------------------
  function edgeLabel(e) {
    return (e.failing ? 'failing · ' : '') + fmtRps(e.rps) + ' · ' + fmtPct(e.successRate) + ' · p99 ' + fmtMs(e.latencyMs.p99);
  }
  function renderTopology(body) {
    var edges = body.edges.filter(function (e) { return e.requests > 0; });
    var html = '<h2>Topology</h2>' + noTraffic(body);
    if (typeof dagre === 'undefined') {
      html += '<p class="error">The graph library did not load.</p>';
    } else if (edges.length > 0) {
      var g = new dagre.graphlib.Graph({ multigraph: false });
      g.setGraph({ rankdir: 'LR', nodesep: 40, ranksep: 140, marginx: 20, marginy: 20 });
      g.setDefaultEdgeLabel(function () { return {}; });
      var figures = {};
      body.services.forEach(function (s) { figures[s.name] = s.figures; });
      var names = {};
      edges.forEach(function (e) { names[e.from] = true; names[e.to] = true; });
      Object.keys(names).forEach(function (n) { g.setNode(n, { width: 150, height: 48 }); });
      edges.forEach(function (e) { g.setEdge(e.from, e.to, { width: 200, height: 24, labelpos: 'c', data: e }); });
      dagre.layout(g);
      var gw = g.graph().width || 600, gh = g.graph().height || 200;
      var svg = '<svg class="graph" viewBox="0 0 ' + Math.ceil(gw) + ' ' + Math.ceil(gh) + '" role="img" aria-labelledby="graph-title"><title id="graph-title">Who calls whom: ' +
        edges.length + ' edges; the table below lists them</title><defs>' +
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker>' +
        '<marker id="arrow-bad" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>';
      g.edges().forEach(function (ref) {
        var ed = g.edge(ref), e = ed.data;
        var d = ed.points.map(function (p, i) { return (i === 0 ? 'M' : 'L') + p.x.toFixed(1) + ' ' + p.y.toFixed(1); }).join(' ');
        svg += '<g class="edge' + (e.failing ? ' failing' : '') + '" data-edge="' + esc(e.from + '->' + e.to) + '" data-failing="' + e.failing + '"><path d="' + d +
          '" marker-end="url(#' + (e.failing ? 'arrow-bad' : 'arrow') + ')"/><text x="' + ed.x.toFixed(1) + '" y="' + (ed.y - 7).toFixed(1) + '" text-anchor="middle">' + esc(edgeLabel(e)) + '</text></g>';
      });
      g.nodes().forEach(function (n) {
        var nd = g.node(n), f = figures[n];
        svg += '<g class="node" data-node="' + esc(n) + '"><a href="#/service/' + encodeURIComponent(n) + '"><rect x="' + (nd.x - nd.width / 2).toFixed(1) + '" y="' + (nd.y - nd.height / 2).toFixed(1) +
          '" width="' + nd.width + '" height="' + nd.height + '" rx="6"/><text class="name" x="' + nd.x.toFixed(1) + '" y="' + (nd.y - 4).toFixed(1) + '" text-anchor="middle">' + esc(n) +
          '</text><text x="' + nd.x.toFixed(1) + '" y="' + (nd.y + 14).toFixed(1) + '" text-anchor="middle">' + (f && f.requests > 0 ? esc(fmtRps(f.rps) + ' · ' + fmtPct(f.successRate)) : 'no traffic') + '</text></a></g>';
      });
      html += svg + '</svg>';
    }
    html += edgesTable(edges, 'Edges over the last ' + body.window);
    patch(section('topology'), html);
  }
  function edgesTable(edges, caption) {
    if (edges.length === 0) return '';
    return '<table><caption>' + esc(caption) + '</caption><thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col">Protocol</th>' + FIG_HEAD +
      '<th scope="col">Failures</th></tr></thead><tbody>' + edges.map(function (e) {
        var fails = Object.keys(e.failures).map(function (k) { return esc(k) + ' ' + e.failures[k]; }).join(', ');
        return '<tr class="' + (e.failing ? 'failing' : '') + '" data-edge-row="' + esc(e.from + '->' + e.to) + '"><td>' + esc(e.from) + '</td><td>' + esc(e.to) + (e.failing ? ' (failing)' : '') +
          '</td><td>' + esc(e.protocol) + '</td>' + figureCells(e) + '<td>' + (fails || '-') + '</td></tr>';
      }).join('') + '</tbody></table>';
  }

  // ---- One service ----------------------------------------------------------------------
  function chart(id, title, series, fields, range) {
    var holder = document.getElementById(id);
    if (!holder || typeof uPlot === 'undefined' || !series) return;
    var data = [series.t].concat(fields.map(function (f) { return series[f.key]; }));
    var width = Math.max(320, holder.clientWidth - 16);
    var existing = charts[id];
    if (existing && existing.holder === holder && existing.width === width) { existing.plot.setData(data); return; }
    if (existing) existing.plot.destroy();
    holder.innerHTML = '<h3>' + esc(title) + '</h3>';
    var plot = new uPlot({
      width: width, height: 170,
      series: [{}].concat(fields.map(function (f) { return { label: f.label, stroke: f.color, width: 2, spanGaps: false }; })),
      scales: range ? { y: { range: range } } : {},
      axes: [{}, { size: 60 }],
    }, data, holder);
    charts[id] = { plot: plot, holder: holder, width: width };
  }

  function configCell(c) {
    if (c.nacked && (c.acked === null || Number(c.nacked.version) >= Number(c.acked))) {
      return '<span class="bad">NACK ' + esc(c.nacked.version) + '</span><br><span class="muted">' + esc(c.nacked.reason) + '</span>';
    }
    if (c.acked !== null) return '<span class="good">ACK ' + esc(c.acked) + '</span>' + (c.sent !== null && c.sent !== c.acked ? ' <span class="warn">(' + esc(c.sent) + ' sent)</span>' : '');
    return c.sent !== null ? '<span class="warn">sent ' + esc(c.sent) + ', no answer</span>' : '<span class="muted">-</span>';
  }

  function renderService(name, body) {
    var s = body.services[0];
    var head = '<h2>' + esc(name) + '</h2>';
    if (!s) { patch(section('service-head'), head + '<p class="empty">No service ' + esc(name) + ': no Service document, instance or traffic by that name.</p>'); return; }
    head += noTraffic(body) + '<table><caption>' + esc(name) + ' over the last ' + esc(body.window) + ' (' + esc(s.view === 'outbound' ? 'what it sent: it serves nothing' : s.view === 'callers' ? 'as its callers saw it' : 'what it served') +
      ')</caption><thead><tr><th scope="col" class="num">Instances</th>' + FIG_HEAD + '</tr></thead><tbody><tr data-service="' + esc(name) + '" data-rps="' + (s.figures ? s.figures.rps : 0) + '"><td class="num">' + s.instances + '</td>' + figureCells(s.figures) + '</tr></tbody></table>';
    patch(section('service-head'), head);

    var chartsEl = section('service-charts');
    if (!document.getElementById('chart-rate')) {
      chartsEl.innerHTML = '<h2>Over the last 10 minutes</h2><div class="charts"><div class="chart" id="chart-rate" role="img" aria-label="Request rate chart"></div>' +
        '<div class="chart" id="chart-success" role="img" aria-label="Success rate chart"></div><div class="chart" id="chart-latency" role="img" aria-label="Latency chart"></div></div>';
    }
    chart('chart-rate', 'Requests per second', s.series, [{ key: 'rps', label: 'req/s', color: '#0b57d0' }]);
    chart('chart-success', 'Success rate', s.series, [{ key: 'successRate', label: 'success', color: '#1e6b34' }], [0, 1]);
    chart('chart-latency', 'Latency (ms)', s.series, [{ key: 'p50Ms', label: 'p50', color: '#0b57d0' }, { key: 'p99Ms', label: 'p99', color: '#b3261e' }]);

    var routes = body.routes || [];
    var routesHtml = '<h2>Routes</h2>';
    if (routes.length === 0) routesHtml += '<p class="muted">No routes declared or seen.</p>';
    else {
      routesHtml += '<table><caption>Routes of ' + esc(name) + ' (as callers sent them), with configured weights and the live split by instance labels</caption><thead><tr><th scope="col">Route</th>' + FIG_HEAD +
        '<th scope="col">Backends: weight, configured share, live share</th></tr></thead><tbody>' + routes.map(function (r) {
          var backends = r.backends.map(function (b) {
            var sub = Object.keys(b.subset).map(function (k) { return k + '=' + b.subset[k]; }).join(',') || 'all';
            var cfg = Math.round(b.configuredShare * 100), live = b.liveShare === null ? null : Math.round(b.liveShare * 100);
            return '<div class="backend" data-backend="' + esc(sub) + '" data-weight="' + b.weight + '" data-live="' + (live === null ? '' : live) + '"><span class="tag">' + esc(sub) + '</span> weight ' + b.weight +
              ' · <meter min="0" max="100" value="' + cfg + '" aria-hidden="true"></meter> ' + cfg + ' % configured · <meter class="live" min="0" max="100" value="' + (live || 0) + '" aria-hidden="true"></meter> ' +
              (live === null ? 'no traffic' : live + ' % live') + '</div>';
          }).join('');
          return '<tr data-route="' + esc(r.route) + '"><th scope="row">' + esc(r.route) + (r.declared ? '' : ' <span class="muted">(not declared)</span>') + '</th>' + figureCells(r.figures) + '<td>' + (backends || '<span class="muted">all endpoints</span>') + '</td></tr>';
        }).join('') + '</tbody></table>';
    }
    patch(section('service-routes'), routesHtml);

    var inst = body.instances || [];
    var instHtml = '<h2>Instances</h2>';
    if (inst.length === 0) instHtml += '<p class="muted">No instance registered or reporting.</p>';
    else {
      instHtml += '<table><caption>Instances of ' + esc(name) + '</caption><thead><tr><th scope="col">Instance</th><th scope="col">Labels</th><th scope="col">Config</th><th scope="col">Certificate expires</th><th scope="col">Last report</th>' +
        FIG_HEAD + '</tr></thead><tbody>' + inst.map(function (i) {
          return '<tr data-instance="' + esc(i.id) + '"><th scope="row">' + esc(i.id) + (i.registered ? '' : ' <span class="warn">(left)</span>') + '<br><span class="muted">' +
            esc(i.endpoints.map(function (e) { return e.address + ' ' + e.protocol; }).join(', ')) + '</span></th><td>' + labels(i.labels) + '</td><td>' + configCell(i.config) + '</td><td>' + fmtExpiry(i.certificateNotAfter) +
            '</td><td>' + fmtAgo(i.lastReport) + '</td>' + figureCells(i.inbound || i.outbound) + '</tr>';
        }).join('') + '</tbody></table>';
      var dest = [];
      inst.forEach(function (i) { i.destinations.forEach(function (d) { dest.push({ i: i, d: d }); }); });
      if (dest.length > 0) {
        instHtml += '<h2>Destinations (what each instance sees)</h2><table><caption>Breakers, endpoint health and ejections per instance and destination</caption><thead><tr><th scope="col">Instance</th><th scope="col">Destination</th><th scope="col">Breaker</th>' +
          '<th scope="col" class="num">Healthy</th><th scope="col" class="num">Ejected</th><th scope="col" class="num">Ejections</th><th scope="col" class="num">Retries</th><th scope="col">Endpoints</th></tr></thead><tbody>' +
          dest.map(function (x) {
            var d = x.d;
            var br = d.breaker === null ? '<span class="muted">none</span>' : d.breaker === 'closed' ? '<span class="good">closed</span>' : '<span class="bad">' + esc(d.breaker) + '</span>';
            var eps = d.endpointList.map(function (e) {
              return '<span class="tag' + (e.ejected ? ' bad' : '') + '">' + esc(e.id) + (e.ejected ? ' ejected' : '') + ' · ' + e.ewmaMs + ' ms</span>';
            }).join('');
            return '<tr><td>' + esc(x.i.id) + '</td><td>' + esc(d.service) + '</td><td>' + br + '</td><td class="num">' + d.endpoints.healthy + '</td><td class="num' + (d.endpoints.ejected > 0 ? ' bad' : '') + '">' + d.endpoints.ejected +
              '</td><td class="num">' + d.ejections + '</td><td class="num">' + d.retries + '</td><td>' + (eps || '-') + '</td></tr>';
          }).join('') + '</tbody></table>';
      }
    }
    patch(section('service-instances'), instHtml);
    patch(section('service-edges'), '<h2>Traffic in and out</h2>' + (edgesTable(body.edges.filter(function (e) { return e.requests > 0; }), 'Edges of ' + name + ' over the last ' + body.window) || '<p class="muted">No traffic in the window.</p>'));
  }

  // ---- Router and refresh ----------------------------------------------------------------
  function view() {
    var h = location.hash.replace(/^#/, '') || '/';
    var m = /^\/service\/([^/]+)$/.exec(h);
    if (m) return { kind: 'service', name: decodeURIComponent(m[1]) };
    if (h === '/topology') return { kind: 'topology' };
    return { kind: 'services' };
  }

  function refresh() {
    var v = view();
    var mine = generation;
    var params = new URLSearchParams();
    if (v.kind === 'service') { params.set('service', v.name); params.set('series', 'true'); }
    if (v.kind === 'services') params.set('series', 'true');
    return getStat(params).then(function (body) {
      if (mine !== generation) return;
      if (v.kind === 'services') renderServices(body);
      else if (v.kind === 'topology') renderTopology(body);
      else renderService(v.name, body);
      statusEl.textContent = 'Updated ' + new Date(body.at).toLocaleTimeString() + ' · ' + body.reportingInstances + ' instances reporting · source ' + body.source;
      main.setAttribute('data-updated', String(body.at));
    }).catch(function (err) {
      statusEl.textContent = 'Update failed: ' + err.message;
    });
  }

  function schedule() {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(function () { refresh().then(schedule, schedule); }, refreshMs);
  }

  function navigate() {
    generation++;
    Object.keys(charts).forEach(function (k) { charts[k].plot.destroy(); });
    charts = {};
    main.innerHTML = '';
    var v = view();
    document.querySelectorAll('[data-nav]').forEach(function (a) {
      if (a.getAttribute('data-nav') === v.kind) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    document.title = 'Trellis — ' + (v.kind === 'service' ? v.name : v.kind);
    refresh().then(schedule, schedule);
  }

  window.addEventListener('hashchange', function () { navigate(); main.focus(); });
  windowSel.addEventListener('change', function () { generation++; refresh().then(schedule, schedule); });
  fetch('/api/info').then(function (r) { return r.json(); }).then(function (info) {
    if (info && info.refreshMs) refreshMs = info.refreshMs;
  }).catch(function () {}).then(navigate);
})();
`;
