// The dashboard's traffic chart: traces per time bucket and model for the chosen class, drawn with
// uPlot, and its legend. dashboard.js hands it the page's state and helpers.
(function () {
  'use strict';

  window.tracegateTrafficChart = function (page) {
    var state = page.state;
    var $ = page.$;
    var el = page.el;
    var fmt = page.fmt;
    var colorOf = page.colorOf;
    var swatch = page.swatch;

    /** Per model, traces per bucket for the chosen class (or all). */
    function trafficView(data, stats) {
      var t = data.traffic;
      var n = t.buckets.length;
      var per = {};
      // Per bucket, the traces that went to their class's current choice: how far routing has converged.
      var onChoice = new Array(n).fill(0);
      var classes = state.cls === 'all' ? Object.keys(t.classes) : t.classes[state.cls] ? [state.cls] : [];
      classes.forEach(function (cls) {
        var models = t.classes[cls];
        var choice = stats.classes[cls] ? stats.classes[cls].decision : null;
        for (var m in models) {
          var a = per[m] || (per[m] = new Array(n).fill(0));
          models[m].count.forEach(function (v, i) {
            a[i] += v;
            if (m === choice) onChoice[i] += v;
          });
        }
      });
      var models = Object.keys(per).sort(function (a, b) {
        return state.models.indexOf(a) - state.models.indexOf(b);
      });
      var totals = new Array(n).fill(0);
      models.forEach(function (m) {
        per[m].forEach(function (v, i) {
          totals[i] += v;
        });
      });
      return {
        buckets: t.buckets,
        bucketMs: data.window.bucket_ms,
        since: data.window.since,
        until: data.window.until,
        models: models,
        per: per,
        totals: totals,
        onChoice: onChoice,
      };
    }

    /**
     * uPlot data: x = bucket middles (seconds); one cumulative series per model, drawn top one first
     * (bars are opaque, so each lower one covers the part of the one above that is not its own);
     * in share mode, then the line of the share that went to the class's current choice.
     */
    function chartData(view) {
      var xs = view.buckets.map(function (b) {
        return (b + view.bucketMs / 2) / 1000;
      });
      var cum = new Array(xs.length).fill(0);
      var stacked = view.models.map(function (m) {
        return view.per[m].map(function (v, i) {
          if (view.totals[i] === 0) return null;
          cum[i] += state.mode === 'share' ? (v / view.totals[i]) * 100 : v;
          return cum[i];
        });
      });
      var data = [xs].concat(stacked.reverse());
      if (state.mode === 'share') {
        data.push(view.onChoice.map(function (v, i) {
          return view.totals[i] === 0 ? null : (v / view.totals[i]) * 100;
        }));
      }
      return data;
    }

    function chartWidth() {
      return Math.max(320, $('chart').clientWidth || $('chart').parentElement.clientWidth);
    }

    function buildChart(view) {
      if (state.chart) state.chart.destroy();
      var bars = uPlot.paths.bars({ size: [0.86, 80], gap: 1 });
      var series = [{}];
      view.models.slice().reverse().forEach(function (m) {
        series.push({ label: m, stroke: colorOf(m), fill: colorOf(m), width: 0, paths: bars, points: { show: false } });
      });
      if (state.mode === 'share') {
        series.push({ label: 'current choice', stroke: '#1f2430', width: 2, dash: [6, 4], spanGaps: true, points: { show: true, size: 5, fill: '#1f2430' } });
      }
      var axis = { stroke: '#6b7280', grid: { stroke: '#eef0f3', width: 1 }, ticks: { stroke: '#e3e6eb', width: 1 }, font: '12px system-ui, sans-serif' };
      state.chart = new uPlot(
        {
          width: chartWidth(),
          height: 260,
          legend: { show: false },
          padding: [12, 28, 0, 0],
          cursor: { points: { show: false }, drag: { x: false, y: false } },
          scales: {
            x: {
              time: true,
              range: function () {
                var v = state.chartView;
                return [v.buckets[0] / 1000, (v.buckets[v.buckets.length - 1] + v.bucketMs) / 1000];
              },
            },
            y: {
              range: function (u, min, max) {
                return state.mode === 'share' ? [0, 100] : [0, Math.max(1, max || 0) * 1.1];
              },
            },
          },
          axes: [
            Object.assign({}, axis, {
              space: 64,
              values: function (u, splits, axisIdx, space, incr) {
                var span = state.chartView.until - state.chartView.since;
                return splits.map(function (s) {
                  return fmt.tick(s * 1000, span, incr);
                });
              },
            }),
            Object.assign({}, axis, {
              size: 48,
              values: function (u, vals) {
                return vals.map(function (v) {
                  return state.mode === 'share' ? v + '%' : fmt.int(v);
                });
              },
            }),
          ],
          series: series,
          hooks: {
            setCursor: [
              function (u) {
                renderLegend(u.cursor.idx);
              },
            ],
          },
        },
        chartData(view),
        $('chart'),
      );
    }

    function renderChart(data) {
      var view = trafficView(data, state.stats);
      state.chartView = view;
      var any = view.totals.some(function (v) {
        return v > 0;
      });
      $('chart-empty').hidden = any;
      var key = state.mode + '|' + view.models.join(',') + '|' + state.models.join(',');
      if (!state.chart || state.chartKey !== key) {
        buildChart(view);
        state.chartKey = key;
      } else {
        state.chart.setData(chartData(view));
      }
      renderLegend(state.chart.cursor.idx);
    }

    /** Below the chart: the hovered bucket's counts, or the whole window's when nothing is hovered. */
    function renderLegend(idx) {
      var view = state.chartView;
      if (!view) return;
      var legend = $('chart-legend');
      legend.textContent = '';
      var hovered = idx !== null && idx !== undefined && idx >= 0 && idx < view.buckets.length;
      var counts = {};
      var total = 0;
      view.models.forEach(function (m) {
        counts[m] = hovered ? view.per[m][idx] : view.per[m].reduce(function (a, b) {
          return a + b;
        }, 0);
        total += counts[m];
      });
      var when = hovered
        ? fmt.clock(view.buckets[idx]) + '–' + fmt.clock(view.buckets[idx] + view.bucketMs)
        : 'last ' + fmt.span(view.until - view.since) + ' · ' + fmt.span(view.bucketMs) + ' buckets';
      legend.appendChild(el('span', { class: 'when' }, when));
      legend.appendChild(el('span', null, fmt.int(total) + ' traces'));
      view.models.forEach(function (m) {
        legend.appendChild(
          el('span', { class: 'legend-item', data: { model: m } }, swatch(m), m + ' ',
            el('b', null, fmt.int(counts[m])), total > 0 ? ' (' + fmt.pct(counts[m] / total) + ')' : ''),
        );
      });
      if (state.mode === 'share' && total > 0) {
        var chosen = hovered ? view.onChoice[idx] : view.onChoice.reduce(function (a, b) {
          return a + b;
        }, 0);
        legend.appendChild(
          el('span', { class: 'legend-item', title: "traces that went to their class's current choice (★ in the table below)" },
            el('span', { class: 'dash' }), 'to the current choice ', el('b', null, fmt.pct(chosen / total))),
        );
      }
    }

    return { render: renderChart, width: chartWidth };
  };
})();
