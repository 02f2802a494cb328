// The tracegate dashboard: polls GET /stats and GET /dashboard/data every 2 s and draws them.
// Plain browser JavaScript, no build step. Every string that comes from a trace is put in the page as
// text (textContent), never as HTML. URLs are relative so the page works under a path prefix too.
(function () {
  'use strict';

  var POLL_MS = 2000;
  /** signals.js: feedback by source, the judge and the shadow (the rest of the page works without it). */
  var signals = window.tracegateSignals;
  var RECENT_LIMIT = 25;
  /** The gateway's own classes (src/core/reserved-classes.ts): never routed, so never a choice. */
  var NEVER_ROUTED = { judge: "the judge's own calls", embedding: 'embeddings, always pinned' };
  var PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
  var THUMB_PATH =
    'M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z';

  var state = {
    stats: null,
    data: null,
    cls: 'all',
    window: 'auto',
    mode: 'share',
    models: [],
    chart: null,
    chartKey: '',
    chartView: null,
    signatures: {},
    timer: null,
    running: false,
    again: false,
    refreshes: 0,
  };

  // ---------- small helpers ----------

  function $(id) {
    return document.getElementById(id);
  }
  function q(sel) {
    return document.querySelector(sel);
  }

  /** el('td', { class: 'x', data: { field: 'count' }, title: '…' }, child, 'text', …) */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        var value = attrs[key];
        if (value === undefined || value === null) continue;
        if (key === 'class') node.className = value;
        else if (key === 'data') for (var d in value) node.dataset[d] = value[d];
        else if (key === 'text') node.textContent = value;
        else if (key === 'style') for (var s in value) node.style[s] = value[s];
        else if (key === 'on') for (var ev in value) node.addEventListener(ev, value[ev]);
        else node.setAttribute(key, value);
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(selector, text) {
    var node = q(selector) || $(selector);
    if (node) node.textContent = text;
  }

  var fmt = {
    int: function (n) {
      return n === null || n === undefined ? '—' : Math.round(n).toLocaleString('en-US');
    },
    pct: function (x) {
      return x === null || x === undefined ? '—' : (x * 100).toFixed(1) + '%';
    },
    score: function (x) {
      return x === null || x === undefined ? '—' : x.toFixed(2);
    },
    ms: function (x) {
      if (x === null || x === undefined) return '—';
      if (x >= 1000) return (x / 1000).toFixed(2) + ' s';
      return (x < 10 ? x.toFixed(1) : String(Math.round(x))) + ' ms';
    },
    usd: function (x) {
      if (x === null || x === undefined) return '—';
      if (x === 0) return '$0';
      if (x >= 100) return '$' + x.toFixed(0);
      if (x >= 1) return '$' + x.toFixed(2);
      if (x >= 0.01) return '$' + x.toFixed(4);
      if (x >= 0.0000005) return '$' + x.toFixed(6);
      return '<$0.000001';
    },
    tokens: function (n) {
      if (n === null || n === undefined) return '—';
      if (n >= 1e6) return (n / 1e6).toFixed(2) + ' M';
      return Math.round(n).toLocaleString('en-US');
    },
    clock: function (ms) {
      var d = new Date(ms);
      var p = function (v) {
        return String(v).padStart(2, '0');
      };
      return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
    },
    /** An x-axis label: seconds only when ticks are less than a minute apart, the date only over days. */
    tick: function (ms, spanMs, incrSeconds) {
      var d = new Date(ms);
      var p = function (v) {
        return String(v).padStart(2, '0');
      };
      var hm = p(d.getHours()) + ':' + p(d.getMinutes());
      if (spanMs > 2 * 86400000) return d.getMonth() + 1 + '/' + d.getDate() + ' ' + hm;
      return incrSeconds < 60 ? hm + ':' + p(d.getSeconds()) : hm;
    },
    span: function (ms) {
      if (ms < 60000) return Math.round(ms / 1000) + ' s';
      if (ms < 3600000) return Math.round(ms / 60000) + ' min';
      if (ms < 86400000) return +(ms / 3600000).toFixed(1) + ' h';
      return +(ms / 86400000).toFixed(1) + ' d';
    },
  };

  function colorOf(model) {
    var i = state.models.indexOf(model);
    return PALETTE[(i < 0 ? state.models.length : i) % PALETTE.length];
  }

  function swatch(model) {
    return el('span', { class: 'swatch', style: { background: colorOf(model) } });
  }

  /** Re-render a section only when its data changed, so rows (and a hovered button) do not flicker. */
  function changed(section, value) {
    var sig = JSON.stringify(value);
    if (state.signatures[section] === sig) return false;
    state.signatures[section] = sig;
    return true;
  }

  /** sign-in.js: the admin key (auth.adminKey), asked for once in a form. */
  var signIn = window.tracegateSignIn;

  function withAuth(headers) {
    var key = signIn ? signIn.key() : null;
    if (key) headers.authorization = 'Bearer ' + key;
    return headers;
  }

  function getJSON(url) {
    return fetch(url, { headers: withAuth({ accept: 'application/json' }), cache: 'no-store' }).then(function (res) {
      return res.json().then(
        function (body) {
          if (!res.ok) {
            var err = new Error((body && body.error && body.error.message) || 'HTTP ' + res.status);
            err.code = body && body.error ? body.error.code : null;
            throw err;
          }
          return body;
        },
        function () {
          throw new Error(url + ': HTTP ' + res.status);
        },
      );
    });
  }

  function showError(message) {
    var banner = $('error');
    if (message) {
      banner.textContent = message;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  // ---------- derived figures ----------

  /** Model keys in config order (the keys of /stats `models`), then any other model seen in the traces. */
  function modelOrder(stats) {
    var order = Object.keys(stats.models || {});
    for (var cls in stats.classes) {
      for (var m in stats.classes[cls].models) if (order.indexOf(m) < 0) order.push(m);
    }
    return order;
  }

  /** Per model, summed over the classes of /stats. */
  function perModel(stats) {
    var out = {};
    state.models.forEach(function (m) {
      out[m] = { count: 0, successes: 0, feedbackCount: 0, feedbackSum: 0, promptTokens: 0, completionTokens: 0, cost: 0 };
    });
    for (var cls in stats.classes) {
      var models = stats.classes[cls].models;
      for (var m in models) {
        var s = models[m];
        var t = out[m];
        t.count += s.count;
        t.successes += Math.round((s.success_rate || 0) * s.count);
        t.feedbackCount += s.feedback_count;
        if (s.mean_feedback !== null) t.feedbackSum += s.mean_feedback * s.feedback_count;
        t.promptTokens += s.prompt_tokens;
        t.completionTokens += s.completion_tokens;
        t.cost += s.cost_usd;
      }
    }
    return out;
  }

  // ---------- rendering ----------

  function renderTotals(stats) {
    var t = stats.totals;
    var total = stats.total_traces;
    var fbSum = 0;
    for (var cls in stats.classes) {
      var models = stats.classes[cls].models;
      for (var m in models) if (models[m].mean_feedback !== null) fbSum += models[m].mean_feedback * models[m].feedback_count;
    }
    setText('[data-testid="total-traces"]', fmt.int(total));
    setText('#total-traces-sub', Object.keys(stats.classes).length + ' classes · ' + state.models.length + ' models');
    setText('[data-testid="total-success-rate"]', total > 0 ? fmt.pct(t.successes / total) : '—');
    setText('#total-success-sub', fmt.int(t.successes) + ' answered · ' + fmt.int(total - t.successes) + ' failed');
    setText('[data-testid="total-mean-feedback"]', t.feedback_count > 0 ? fmt.score(fbSum / t.feedback_count) : '—');
    setText('[data-testid="total-feedback-count"]', fmt.int(t.feedback_count) + ' rated traces');
    setText('[data-testid="total-tokens"]', fmt.tokens(t.prompt_tokens + t.completion_tokens));
    setText('#total-tokens-sub', fmt.tokens(t.prompt_tokens) + ' prompt · ' + fmt.tokens(t.completion_tokens) + ' completion');
    setText('[data-testid="total-cost"]', fmt.usd(t.cost_usd));
    setText('#total-cost-sub', total > 0 ? fmt.usd(t.cost_usd / total) + ' per trace' : '\u00a0');
    setText('#policy', 'policy: ' + stats.policy);
  }

  function renderModels(stats) {
    var totals = perModel(stats);
    var total = stats.total_traces;
    if (!changed('models', [totals, stats.models, state.models])) return;
    var grid = $('models');
    grid.textContent = '';
    state.models.forEach(function (m) {
      var t = totals[m];
      var cooldown = stats.models[m] ? stats.models[m].cooldown_seconds : 0;
      var badge = cooldown > 0
        ? el('span', { class: 'badge cooling', title: 'taken out of routing by the circuit breaker' }, 'cooling ' + cooldown + ' s')
        : stats.models[m] ? el('span', { class: 'badge ok' }, 'available') : el('span', { class: 'badge' }, 'not configured');
      var row = function (label, field, value) {
        return [el('dt', null, label), el('dd', { data: { field: field } }, value)];
      };
      var dl = el('dl');
      [
        row('Traces', 'count', fmt.int(t.count)),
        row('Share of traffic', 'traffic-share', total > 0 ? fmt.pct(t.count / total) : '—'),
        row('Success rate', 'success-rate', t.count > 0 ? fmt.pct(t.successes / t.count) : '—'),
        row('Mean feedback', 'mean-feedback', t.feedbackCount > 0 ? fmt.score(t.feedbackSum / t.feedbackCount) + ' (' + t.feedbackCount + ')' : '—'),
        row('Tokens', 'tokens', fmt.tokens(t.promptTokens + t.completionTokens)),
        row('Spent', 'cost', fmt.usd(t.cost)),
      ].forEach(function (pair) {
        dl.appendChild(pair[0]);
        dl.appendChild(pair[1]);
      });
      grid.appendChild(
        el('div', { class: 'model-card', data: { model: m }, style: { borderTopColor: colorOf(m) } },
          el('div', { class: 'name' }, el('span', { class: 'model-label' }, swatch(m), m), badge),
          dl),
      );
    });
  }

  function renderInstances(stats) {
    var instances = stats.instances || {};
    if (!changed('instances', instances)) return;
    var grid = $('instances');
    grid.textContent = '';
    Object.keys(instances).forEach(function (id) {
      var i = instances[id];
      var dl = el('dl');
      [
        ['Traces', 'count', fmt.int(i.count)],
        ['Share of traffic', 'traffic-share', fmt.pct(i.share)],
        ['Success rate', 'success-rate', i.count > 0 ? fmt.pct(i.success_rate) : '—'],
        ['Rated traces', 'feedback-count', fmt.int(i.feedback_count)],
        ['Spent', 'cost', fmt.usd(i.cost_usd)],
        ['Newest trace', 'last-time', fmt.clock(i.last_time)],
      ].forEach(function (r) {
        dl.appendChild(el('dt', null, r[0]));
        dl.appendChild(el('dd', { data: { field: r[1] } }, r[2]));
      });
      grid.appendChild(el('div', { class: 'model-card', data: { instance: id } }, el('div', { class: 'name' }, el('span', null, id)), dl));
    });
  }

  function shareBar(share, model) {
    if (share === null || share === undefined) return el('span', { class: 'muted' }, '—');
    return el('span', null,
      el('span', { class: 'bar' }, el('span', { class: 'fill', style: { width: (share * 100).toFixed(1) + '%', background: colorOf(model) } })),
      el('span', { class: 'bar-text' }, fmt.pct(share)));
  }

  function estimateBar(estimate, sigma) {
    if (estimate === null || estimate === undefined) return el('span', { class: 'muted' }, '—');
    var lo = Math.max(0, estimate - (sigma || 0));
    var hi = Math.min(1, estimate + (sigma || 0));
    return el('span', { title: 'estimated quality ' + estimate.toFixed(3) + ', standard deviation ' + (sigma || 0).toFixed(3) },
      el('span', { class: 'bar' },
        el('span', { class: 'whisker', style: { left: lo * 100 + '%', width: (hi - lo) * 100 + '%' } }),
        el('span', { class: 'mark', style: { left: 'calc(' + estimate * 100 + '% - 1px)' } })),
      el('span', { class: 'bar-text' }, fmt.score(estimate) + ' ± ' + fmt.score(sigma || 0)));
  }

  function renderClasses(stats) {
    var names = Object.keys(stats.classes);
    $('classes-empty').hidden = names.length > 0;
    if (!changed('classes', [stats.classes, state.models])) return;
    var table = $('classes');
    Array.prototype.slice.call(table.tBodies).forEach(function (b) {
      b.remove();
    });
    names.forEach(function (cls) {
      var c = stats.classes[cls];
      var body = el('tbody', { data: { class: cls } });
      body.appendChild(
        el('tr', { class: 'group' },
          el('td', { colspan: '10' },
            el('span', { class: 'class-name' }, cls),
            el('span', { class: 'decision' },
              'choice ',
              el('b', { data: { field: 'decision' } }, c.decision === null ? '—' : c.decision),
              c.confidence === null ? '' : ' · evidence ' + c.confidence.toFixed(1),
              Object.prototype.hasOwnProperty.call(NEVER_ROUTED, cls) ? ' · not routed: ' + NEVER_ROUTED[cls] : ''))),
      );
      var models = Object.keys(c.models).sort(function (a, b) {
        return state.models.indexOf(a) - state.models.indexOf(b);
      });
      models.forEach(function (m) {
        var s = c.models[m];
        var chosen = m === c.decision;
        body.appendChild(
          el('tr', { data: { model: m }, class: chosen ? 'chosen' : null },
            el('td', { class: 'left' },
              el('span', { class: 'model-label' }, el('span', { class: 'star', title: chosen ? 'current choice' : null }, chosen ? '★' : ''), swatch(m), m)),
            el('td', { data: { field: 'count' } }, fmt.int(s.count)),
            el('td', { class: 'left', data: { field: 'share' } }, shareBar(s.share, m)),
            el('td', { class: 'left', data: { field: 'estimate' } }, estimateBar(s.estimate, s.uncertainty)),
            el('td', { data: { field: 'rated' } }, s.rated === null || s.rated === undefined ? el('span', { class: 'muted' }, '—') : fmt.int(s.rated)),
            el('td', { data: { field: 'success-rate' } }, s.count > 0 ? fmt.pct(s.success_rate) : '—'),
            el('td', { data: { field: 'mean-feedback' }, title: signals ? signals.bySourceText(s.feedback_by_source) : null },
              s.mean_feedback === null ? el('span', { class: 'muted' }, '—') : fmt.score(s.mean_feedback) + ' (' + s.feedback_count + ')'),
            el('td', { data: { field: 'latency' } }, s.count > 0 ? fmt.ms(s.latency_p50_ms) + ' / ' + fmt.ms(s.latency_p95_ms) : '—'),
            el('td', { data: { field: 'tokens' } }, fmt.tokens(s.prompt_tokens + s.completion_tokens)),
            el('td', { data: { field: 'cost' } }, fmt.usd(s.cost_usd))),
        );
      });
      table.appendChild(body);
    });
  }

  function thumbIcon() {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('d', THUMB_PATH);
    svg.appendChild(path);
    return svg;
  }

  function thumbButton(trace, thumbs) {
    // Pressed for a person's rating only (feedback stored without a source is a person's).
    var human = trace.feedback_source === 'human' || trace.feedback_source === null;
    var active = human && (thumbs === 'up' ? trace.feedback === 1 : trace.feedback === 0);
    var btn = el('button', {
      type: 'button',
      class: 'thumb ' + thumbs + (active ? ' active' : ''),
      title: thumbs === 'up' ? 'good answer (feedback 1)' : 'bad answer (feedback 0)',
      'aria-label': 'thumbs ' + thumbs + ' for trace ' + trace.id,
      'aria-pressed': active ? 'true' : 'false',
      data: { thumbs: thumbs },
    });
    btn.appendChild(thumbIcon());
    btn.addEventListener('click', function () {
      sendFeedback(trace, thumbs, btn);
    });
    return btn;
  }

  function renderRecent(data) {
    var rows = data.recent;
    $('recent-empty').hidden = rows.length > 0;
    if (!changed('recent', [rows, state.models])) return;
    var body = $('recent').tBodies[0];
    body.textContent = '';
    rows.forEach(function (t) {
      var tokens = t.prompt_tokens === null && t.completion_tokens === null ? null : (t.prompt_tokens || 0) + (t.completion_tokens || 0);
      var outcomeTitle = t.error ? t.error : t.status !== null ? 'HTTP ' + t.status : null;
      body.appendChild(
        el('tr', { data: { traceId: t.id } },
          el('td', { class: 'left', title: new Date(t.time).toISOString() + ' · ' + t.id }, fmt.clock(t.time)),
          el('td', { class: 'left', data: { field: 'class' } }, t.query_class),
          el('td', { class: 'left', data: { field: 'model' } }, el('span', { class: 'model-label' }, swatch(t.model), t.model)),
          el('td', { class: 'left reason', data: { field: 'reason' } }, t.reason + (t.attempt > 1 ? ' · attempt ' + t.attempt : '')),
          el('td', { class: 'left', data: { field: 'outcome' } }, el('span', { class: 'outcome ' + t.outcome, title: outcomeTitle }, t.outcome)),
          el('td', { data: { field: 'latency' } }, fmt.ms(t.latency_ms)),
          el('td', { data: { field: 'tokens' } }, fmt.tokens(tokens)),
          el('td', { data: { field: 'cost' } }, fmt.usd(t.cost_usd)),
          el('td', { class: 'left feedback-cell' },
            el('span', { class: 'fb-value', data: { field: 'feedback' } }, fmt.score(t.feedback)),
            t.feedback !== null && t.feedback_source !== null && t.feedback_source !== 'human'
              ? el('span', { class: 'fb-source', data: { field: 'feedback-source' } }, t.feedback_source)
              : null,
            // An embedding, or a refused attempt, is no answer to rate.
            t.endpoint === 'embeddings' || t.outcome === 'refused' ? null : thumbButton(t, 'up'),
            t.endpoint === 'embeddings' || t.outcome === 'refused' ? null : thumbButton(t, 'down')),
          el('td', { class: 'left query', data: { field: 'query' }, title: t.query === null ? 'prompt not stored (traces.storePrompts)' : t.query },
            t.query === null ? el('span', { class: 'muted' }, '(not stored)') : t.query)),
      );
    });
  }

  function sendFeedback(trace, thumbs, btn) {
    btn.disabled = true;
    fetch('feedback', {
      method: 'POST',
      headers: withAuth({ 'content-type': 'application/json' }),
      body: JSON.stringify({ trace_id: trace.id, thumbs: thumbs }),
    })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error((body && body.error && body.error.message) || 'HTTP ' + res.status);
          trace.feedback = body.feedback;
          trace.feedback_source = 'human';
          state.signatures.recent = '';
          renderRecent(state.data);
          showError(null);
          refresh();
        });
      })
      .catch(function (err) {
        btn.disabled = false;
        showError('Feedback was not saved: ' + err.message);
      });
  }

  // ---------- the traffic chart (chart.js) ----------

  var trafficChart = window.tracegateTrafficChart({ state: state, $: $, el: el, fmt: fmt, colorOf: colorOf, swatch: swatch });

  function renderClassSelect(stats) {
    var select = $('class-select');
    var names = Object.keys(stats.classes);
    if (!changed('class-select', names)) return;
    var current = state.cls;
    select.textContent = '';
    select.appendChild(el('option', { value: 'all' }, 'all classes'));
    names.forEach(function (n) {
      select.appendChild(el('option', { value: n }, n));
    });
    select.value = names.indexOf(current) >= 0 ? current : 'all';
    state.cls = select.value;
  }

  function render() {
    var stats = state.stats;
    var data = state.data;
    state.models = modelOrder(stats);
    data.recent.forEach(function (t) {
      if (state.models.indexOf(t.model) < 0) state.models.push(t.model);
    });
    renderTotals(stats);
    renderClassSelect(stats);
    trafficChart.render(data);
    renderModels(stats);
    renderInstances(stats);
    if (signals) signals.render(stats, { el: el, fmt: fmt, changed: changed });
    renderClasses(stats);
    renderRecent(data);
  }

  // ---------- polling ----------

  function setStatus(ok, text) {
    var status = $('status');
    status.classList.toggle('live', ok);
    status.classList.toggle('offline', !ok);
    setText('#status-text', text);
  }

  function refresh() {
    if (state.running) {
      state.again = true;
      return;
    }
    state.running = true;
    clearTimeout(state.timer);
    var dataUrl = 'dashboard/data?window=' + encodeURIComponent(state.window) + '&limit=' + RECENT_LIMIT;
    Promise.all([getJSON('stats'), getJSON(dataUrl)])
      .then(function (results) {
        state.stats = results[0];
        state.data = results[1];
        render();
        showError(null);
        setStatus(true, 'live · updated ' + fmt.clock(Date.now()));
        state.refreshes++;
        document.body.dataset.refreshes = String(state.refreshes);
        document.body.dataset.state = 'ready';
      })
      .catch(function (err) {
        // No key or a wrong one: the sign-in form, and no polling until a key is given.
        if (err.code === 'invalid_api_key' || err.code === 'missing_api_key') {
          setStatus(false, 'signed out');
          showError(null);
          state.signedOut = true;
          if (signIn) signIn.show(function () {
            state.signedOut = false;
            refresh();
          });
          return;
        }
        setStatus(false, 'offline');
        // Client keys without an admin key: the message says how to add one.
        if (err.code === 'admin_key_required') showError(err.message);
        else showError('Cannot load the dashboard data: ' + err.message + ' — retrying every ' + POLL_MS / 1000 + ' s.');
        if (document.body.dataset.state === 'loading') document.body.dataset.state = 'error';
      })
      .then(function () {
        state.running = false;
        if (state.again) {
          state.again = false;
          refresh();
        } else if (!state.signedOut) {
          state.timer = setTimeout(tick, POLL_MS);
        }
      });
  }

  function tick() {
    // A hidden tab does not poll; it refreshes as soon as it is shown again.
    if (document.hidden) state.timer = setTimeout(tick, POLL_MS);
    else refresh();
  }

  function start() {
    if (typeof uPlot === 'undefined') {
      showError('The chart library did not load (dashboard/assets/uplot.js).');
      document.body.dataset.state = 'error';
      return;
    }
    $('class-select').addEventListener('change', function (e) {
      state.cls = e.target.value;
      if (state.data) trafficChart.render(state.data);
    });
    $('window-select').addEventListener('change', function (e) {
      state.window = e.target.value;
      refresh();
    });
    document.querySelectorAll('.segmented button').forEach(function (btn) {
      btn.addEventListener('click', function () {
        state.mode = btn.dataset.mode;
        document.querySelectorAll('.segmented button').forEach(function (b) {
          b.classList.toggle('active', b === btn);
        });
        if (state.data) trafficChart.render(state.data);
      });
    });
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden) refresh();
    });
    if (typeof ResizeObserver !== 'undefined') {
      new ResizeObserver(function () {
        if (state.chart) state.chart.setSize({ width: trafficChart.width(), height: 260 });
      }).observe($('chart').parentElement);
    }
    refresh();
  }

  start();
})();
