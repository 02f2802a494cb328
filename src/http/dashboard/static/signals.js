// The dashboard's quality signals (GET /stats): the rated traces by who rated them
// (`feedback_by_source`), the judge's and the shadow's calls and dollars today (`judge`, `shadow`),
// and the sticky sessions' share of the routed answers (`sticky`), each present only when configured. Loaded before dashboard.js, which calls `render` on every refresh
// with its helpers. Plain browser JavaScript; everything is put in the page as text.
(function () {
  'use strict';

  /** Feedback sources: the /stats key, its label, and where such feedback comes from. */
  var SOURCES = [
    ['human', 'Human', 'POST /feedback (the thumbs below)'],
    ['judge', 'Judge', 'scores from the judge model (router.judge)'],
    ['implicit', 'Implicit', 'answers whose caller sent the same conversation again (router.implicit)'],
    ['offline', 'Offline', 'imported evaluation results'],
  ];

  /** "human 2 · implicit 1": the sources that gave any feedback, or null when none did. */
  function bySourceText(counts) {
    if (!counts) return null;
    var parts = [];
    SOURCES.forEach(function (s) {
      if (counts[s[0]] > 0) parts.push(s[0] + ' ' + counts[s[0]]);
    });
    return parts.length > 0 ? parts.join(' · ') : null;
  }

  /** A card like the model cards: a title, then label → value rows (each value under `data-field`). */
  function card(h, name, title, rows) {
    var dl = h.el('dl');
    rows.forEach(function (r) {
      dl.appendChild(h.el('dt', { title: r[3] || null }, r[0]));
      dl.appendChild(h.el('dd', { data: { field: r[1] } }, r[2]));
    });
    return h.el('div', { class: 'model-card', data: { signal: name } }, h.el('div', { class: 'name' }, title), dl);
  }

  function feedbackCard(h, counts) {
    var total = 0;
    SOURCES.forEach(function (s) {
      total += counts[s[0]] || 0;
    });
    var rows = SOURCES.map(function (s) {
      var n = counts[s[0]] || 0;
      var value = h.el('span', null, h.fmt.int(n), total > 0 ? h.el('span', { class: 'signal-share' }, ' ' + h.fmt.pct(n / total)) : null);
      return [s[1], s[0], value, s[2]];
    });
    return card(h, 'feedback', 'Feedback by source', rows);
  }

  function spendRows(h, s) {
    return [
      ['Spent today', 'dollars-today', h.fmt.usd(s.dollars_today), 'dollars this UTC day'],
      ['Daily budget', 'daily-budget', h.fmt.usd(s.daily_budget_usd)],
    ];
  }

  function judgeCard(h, j) {
    return card(h, 'judge', 'Judge · ' + j.model, [
      ['Calls', 'calls', h.fmt.int(j.calls), 'answers sent to the judge since this instance started'],
      ['Scored', 'scored', h.fmt.int(j.scored)],
      ['No score', 'not-scored', h.fmt.int(j.unparsed + j.failed), 'replies without a score, and calls that failed'],
      ['Waiting', 'queued', h.fmt.int(j.queued)],
    ].concat(spendRows(h, j)));
  }

  function shadowCard(h, s) {
    return card(h, 'shadow', 'Shadow', [
      ['Calls', 'calls', h.fmt.int(s.calls), 'shadow calls since this instance started'],
      ['Answered', 'answered', h.fmt.int(s.answered)],
      ['Failed', 'failed', h.fmt.int(s.failed)],
    ].concat(spendRows(h, s)));
  }

  function stickyCard(h, s) {
    return card(h, 'sticky', 'Sticky sessions', [
      ['Sticky share', 'share', h.fmt.pct(s.share), "routed answers that went to their conversation's model (router.sticky), since this instance started"],
      ['Sticky answers', 'sticky-answers', h.fmt.int(s.sticky_answers)],
      ['Routed answers', 'routed-answers', h.fmt.int(s.routed_answers)],
      ['Moved', 'moved', h.fmt.int(s.moved), 'conversations moved to another model: theirs failed or could not be used'],
      ['Sessions', 'sessions', h.fmt.int(s.sessions), "conversations in this instance's memory"],
    ]);
  }

  function render(stats, h) {
    var counts = stats.feedback_by_source || {};
    var judge = stats.judge || null;
    var shadow = stats.shadow || null;
    var sticky = stats.sticky || null;
    if (!h.changed('signals', [counts, judge, shadow, sticky])) return;
    var grid = document.getElementById('signals');
    grid.textContent = '';
    grid.appendChild(feedbackCard(h, counts));
    if (judge) grid.appendChild(judgeCard(h, judge));
    if (shadow) grid.appendChild(shadowCard(h, shadow));
    if (sticky) grid.appendChild(stickyCard(h, sticky));
  }

  window.tracegateSignals = { render: render, bySourceText: bySourceText };
})();
