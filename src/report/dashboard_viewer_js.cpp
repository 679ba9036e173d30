// The dashboard viewer's JavaScript, inlined into index.html by dashboard_assets.cpp. Plain ES2017,
// no dependencies. HTML is built as strings, every data string escaped (esc) on the way in. Pages:
// the latent table and hierarchy tree (renderIndex), the latent page (renderLatent), #selftest.
#include "dashboard_site.hpp"

namespace saelab::dashboard {

const char* viewer_js() {
  return R"JS(
(function () {
'use strict';
var D = window.SAELAB_DATA, META = D.meta, VOCAB = D.vocab;
var app = document.getElementById('app'), errorsEl = document.getElementById('errors');
var PAGE = 100;

function showError(msg) {
  var div = document.createElement('div');
  div.className = 'load-error';
  div.textContent = msg;
  errorsEl.appendChild(div);
}
window.addEventListener('error', function (e) { showError('script error: ' + e.message); });
window.addEventListener('unhandledrejection', function (e) { showError(String(e.reason && e.reason.message || e.reason)); });
if (!META || !VOCAB) {
  app.textContent = 'data/meta.js or data/vocab.js did not load: open index.html from its own directory.';
  return;
}

// ---------- formatting
var ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
function tokText(id) {
  var s = VOCAB[id];
  if (s === undefined) return '\u27e8' + id + '\u27e9';
  if (s === '') return '\u2205';
  return s.replace(/\n/g, '\u21b5').replace(/\r/g, '\u240d').replace(/\t/g, '\u21e5');
}
function num(x) {
  if (x === null || x === undefined || isNaN(x)) return '\u2014';
  if (x === 0) return '0';
  var a = Math.abs(x);
  return (a >= 1e4 || a < 1e-3) ? x.toExponential(2) : String(Number(x.toPrecision(3)));
}
function pct(x) { return (100 * x).toFixed(1) + '%'; }
function pow10(e) { return '10<sup>' + e + '</sup>'; }
function densityHtml(d) { return d > 0 ? pow10((Math.log(d) / Math.LN10).toFixed(1)) : '0'; }
function link(s, i, text) { return '<a href="#sae=' + s + '&latent=' + i + '">' + (text === undefined ? i : text) + '</a>'; }
function tokList(ids, n) {
  var h = '';
  for (var k = 0; k < ids.length && k < n; ++k) h += '<code class="tt">' + esc(tokText(ids[k])) + '</code> ';
  return h + (ids.length > n ? '\u2026' : '');
}

// ---------- data: one <script> per file, inserted on demand (fetch() is refused on file://)
var pending = {};
function load(key) {
  if (D[key] !== undefined) return Promise.resolve(D[key]);
  if (!pending[key]) {
    pending[key] = new Promise(function (resolve, reject) {
      var el = document.createElement('script');
      el.src = 'data/' + key + '.js';
      el.onload = function () {
        if (D[key] !== undefined) resolve(D[key]); else reject(new Error('data/' + key + '.js did not define its data'));
      };
      el.onerror = function () { delete pending[key]; reject(new Error('cannot load data/' + key + '.js')); };
      document.head.appendChild(el);
    });
  }
  return pending[key];
}
function tableOf(s) { return load('sae' + s + '/latents'); }
function latentOf(s, i) {
  var c = Math.floor(i / META.chunk_latents);
  return load('sae' + s + '/chunk_' + c).then(function (ch) { return ch.latents[i - ch.first]; });
}

// ---------- SAE helpers
function sae(s) { return META.saes[s]; }
function isHier(s) { return sae(s).n_parents > 0 && sae(s).children_per_parent > 0; }
function parentOf(s, i) {
  var P = sae(s).n_parents, m = sae(s).children_per_parent;
  return (!isHier(s) || i < P) ? -1 : Math.floor((i - P) / m);
}
function childrenOf(s, p) {
  var P = sae(s).n_parents, m = sae(s).children_per_parent, out = [];
  for (var j = 0; j < m; ++j) out.push(P + p * m + j);
  return out;
}
function density(T, i) { return META.n_tokens > 0 ? T.fires[i] / META.n_tokens : 0; }
function isDead(T, i) { return T.fires[i] === 0; }
function isDense(T, i) { return density(T, i) > META.settings.dense_threshold; }
function flagsHtml(T, i) {
  return (isDead(T, i) ? '<span class="flag dead">dead</span>' : '') +
         (isDense(T, i) ? '<span class="flag dense">dense</span>' : '');
}
function share(T, s, i) {  // a child's firings as a share of its parent's
  var p = parentOf(s, i);
  return p < 0 || T.fires[p] === 0 ? null : T.fires[i] / T.fires[p];
}

// ---------- navigation
function params() {
  var out = {};
  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
    if (!kv) return;
    var p = kv.split('=');
    out[decodeURIComponent(p[0])] = p.length > 1 ? decodeURIComponent(p[1]) : '';
  });
  return out;
}
function setNav(s, view) {
  var h = '<span class="run">' + esc(META.model_name) + ' \u00b7 <code>' + esc(META.hook_name) + '</code> \u00b7 ' +
          META.n_tokens.toLocaleString('en') + ' tokens in ' + META.n_contexts.toLocaleString('en') + ' contexts</span>';
  if (META.saes.length > 1) {
    h += ' <label>SAE <select id="sae-select">';
    META.saes.forEach(function (x, k) {
      h += '<option value="' + k + '"' + (k === s ? ' selected' : '') + '>' + esc(x.name) + '</option>';
    });
    h += '</select></label>';
  }
  h += ' <a href="#sae=' + s + '">latents</a>';
  if (isHier(s)) h += ' <a href="#sae=' + s + '&view=tree">hierarchy</a>';
  var nav = document.getElementById('nav');
  nav.innerHTML = h;
  var sel = document.getElementById('sae-select');
  if (sel) sel.onchange = function () { location.hash = 'sae=' + sel.value + (view === 'tree' && isHier(+sel.value) ? '&view=tree' : ''); };
}
function route() {
  var p = params();
  if ('selftest' in p) return selftest();
  var s = Math.min(Math.max(parseInt(p.sae, 10) || 0, 0), META.saes.length - 1);
  if (p.latent !== undefined) return renderLatent(s, parseInt(p.latent, 10));
  return renderIndex(s, p.view === 'tree' && isHier(s) ? 'tree' : 'table');
}

// ---------- SVG charts
function decadeTicks(x0, x1, X, y) {
  var h = '';
  for (var k = Math.ceil(x0 - 1e-9); k <= x1 + 1e-9; ++k)
    h += '<line x1="' + X(k) + '" x2="' + X(k) + '" y1="' + y + '" y2="' + (y + 4) + '" class="axis"/>' +
         '<text x="' + X(k) + '" y="' + (y + 16) + '" text-anchor="middle">10<tspan dy="-5" font-size="8">' + k + '</tspan></text>';
  return h;
}
function densitySvg(T) {
  var h = T.density_hist, nb = h.counts.length, W = 640, H = 150, L = 70, R = 10, B = 30, top = 10;
  var mx = Math.max.apply(null, h.counts.concat([h.dead, 1]));
  var x0 = h.lo, x1 = 0, X = function (x) { return (L + (x - x0) / ((x1 - x0) || 1) * (W - L - R)).toFixed(1); };
  var Y = function (c) { return (top + (1 - c / mx) * (H - top - B)).toFixed(1); };
  var svg = '<svg id="density-hist" class="chart" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + ' ' + H + '">';
  svg += '<rect class="bar dead" x="8" width="40" y="' + Y(h.dead) + '" height="' + (H - B - Y(h.dead)).toFixed(1) +
         '"><title>dead: ' + h.dead + ' latents</title></rect><text x="28" y="' + (H - B + 16) + '" text-anchor="middle">dead</text>';
  for (var b = 0; b < nb; ++b) {
    var a = x0 + b * h.width, c = h.counts[b];
    svg += '<rect class="bar" x="' + X(a) + '" width="' + Math.max(0, X(a + h.width) - X(a) - 1).toFixed(1) + '" y="' + Y(c) +
           '" height="' + (H - B - Y(c)).toFixed(1) + '"><title>density 10^' + a.toFixed(2) + ' \u2013 10^' +
           (a + h.width).toFixed(2) + ': ' + c + ' latents</title></rect>';
  }
  var t = Math.log(META.settings.dense_threshold) / Math.LN10;
  if (t >= x0 && t <= x1) svg += '<line class="threshold" x1="' + X(t) + '" x2="' + X(t) + '" y1="' + top + '" y2="' + (H - B) + '"><title>dense threshold</title></line>';
  svg += '<line class="axis" x1="' + L + '" x2="' + (W - R) + '" y1="' + (H - B) + '" y2="' + (H - B) + '"/>';
  return svg + decadeTicks(x0, x1, X, H - B) + '</svg>';
}
function actHistSvg(hist) {
  var lo = META.hist.lo, step = (META.hist.hi - META.hist.lo) / META.hist.bins, b0 = hist.length, b1 = 0, mx = 0;
  hist.forEach(function (c, b) { if (c > 0) { b0 = Math.min(b0, b); b1 = b + 1; mx = Math.max(mx, c); } });
  if (!mx) return '<p class="note">No firings.</p>';
  var x0 = lo + b0 * step, x1 = lo + b1 * step;
  if (x1 - x0 < 1) { x0 -= 0.5; x1 += 0.5; }
  var W = 640, H = 160, L = 40, R = 10, B = 30, top = 10;
  var X = function (x) { return (L + (x - x0) / (x1 - x0) * (W - L - R)).toFixed(1); };
  var Y = function (c) { return (top + (1 - c / mx) * (H - top - B)).toFixed(1); };
  var svg = '<svg id="act-hist" class="chart" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + ' ' + H + '">';
  for (var b = b0; b < b1; ++b) {
    var a = lo + b * step;
    svg += '<rect class="bar" x="' + X(a) + '" width="' + Math.max(0.5, X(a + step) - X(a) - 1).toFixed(1) + '" y="' + Y(hist[b]) +
           '" height="' + (H - B - Y(hist[b])).toFixed(1) + '"><title>activation ' + num(Math.pow(10, a)) + ' \u2013 ' +
           num(Math.pow(10, a + step)) + ': ' + hist[b] + ' tokens</title></rect>';
  }
  svg += '<line class="axis" x1="' + L + '" x2="' + (W - R) + '" y1="' + (H - B) + '" y2="' + (H - B) + '"/>';
  svg += '<text x="' + L + '" y="' + (top + 8) + '">' + mx + '</text>';
  return svg + decadeTicks(x0, x1, X, H - B) + '</svg>';
}

// ---------- examples: every token shaded by act / latent max, the centre token marked
function exampleHtml(e, max) {
  var h = '<div class="ex" data-value="' + e.v + '"><span class="exv">' + num(e.v) + '</span><span class="ctx">';
  for (var k = 0; k < e.t.length; ++k) {
    var a = e.a[k], alpha = max > 0 ? Math.max(0, Math.min(1, a / max)) : 0;
    h += '<span class="tok' + (k === e.c ? ' max' : '') + '" style="background:rgba(255,110,0,' + alpha.toFixed(3) +
         ')" title="' + esc(num(a) + ' \u00b7 token ' + e.t[k]) + '">' + esc(tokText(e.t[k])) + '</span>';
  }
  return h + '</span><span class="exsrc">ctx ' + e.ctx + ' pos ' + e.pos + '</span></div>';
}
function examplesHtml(list, max, n) {
  var h = '';
  for (var k = 0; k < list.length && k < n; ++k) h += exampleHtml(list[k], max);
  return h || '<p class="note">No examples.</p>';
}

// ---------- index: table or hierarchy tree
var states = {};
function stateOf(s) {
  if (!states[s]) states[s] = {sort: 'index', dir: 1, q: '', flag: 'all', level: 'all', page: 0};
  return states[s];
}
var textCache = {};
function searchText(s, T, i) {
  var c = textCache[s] || (textCache[s] = {top: [], ctx: []});
  if (c.top[i] === undefined) c.top[i] = T.top_tokens[i].map(function (id) { return VOCAB[id] || ''; }).join(' ').toLowerCase();
  var SR = D['sae' + s + '/search'];
  if (SR && c.ctx[i] === undefined)
    c.ctx[i] = SR[i].map(function (w) { return w.map(function (id) { return VOCAB[id] || ''; }).join(''); }).join(' \u2016 ').toLowerCase();
  return c.top[i] + '\u2016' + (c.ctx[i] || '');
}
var SORT = {
  index: function (T, i) { return i; },
  density: function (T, i) { return T.fires[i]; },
  max: function (T, i) { return T.max[i]; },
  mean: function (T, i) { return T.mean[i]; },
  w_freq: function (T, i) { return T.w_freq[i]; },
  w_mag: function (T, i) { return T.w_mag[i]; },
  w_final: function (T, i) { return T.w_final[i]; }
};
var lastRows = [];
function filteredRows(s, T, st, parentsOnly) {
  var F = T.fires.length, q = st.q.trim().toLowerCase(), rows = [];
  for (var i = 0; i < F; ++i) {
    if (parentsOnly && parentOf(s, i) >= 0) continue;
    if (st.flag === 'dead' && !isDead(T, i)) continue;
    if (st.flag === 'alive' && isDead(T, i)) continue;
    if (st.flag === 'dense' && !isDense(T, i)) continue;
    if (!parentsOnly && st.level === 'parents' && parentOf(s, i) >= 0) continue;
    if (!parentsOnly && st.level === 'children' && parentOf(s, i) < 0) continue;
    if (q && searchText(s, T, i).indexOf(q) < 0) continue;
    rows.push(i);
  }
  var key = SORT[st.sort], dir = st.dir;
  rows.sort(function (a, b) { return dir * (key(T, a) - key(T, b)) || a - b; });
  return rows;
}
function cellsHtml(s, T, i) {
  var d = density(T, i), lo = T.density_hist.lo;
  var w = d > 0 ? Math.max(2, 60 * (1 - (Math.log(d) / Math.LN10) / (lo || -1))) : 0;
  var h = '<td class="num">' + link(s, i) + '</td><td class="dens" data-density="' + d + '"><span class="dbar" style="width:' +
          w.toFixed(0) + 'px"></span>' + densityHtml(d) + '</td><td class="num">' + num(T.max[i]) + '</td><td class="num">' +
          num(T.mean[i]) + '</td><td class="toks">' + tokList(T.top_tokens[i], 8) + '</td><td>' + flagsHtml(T, i) + '</td>';
  if (T.w_freq) h += '<td class="num">' + num(T.w_freq[i]) + '</td><td class="num">' + num(T.w_mag[i]) + '</td><td class="num">' + num(T.w_final[i]) + '</td>';
  return h;
}
function rowAttrs(T, i) {
  return ' data-latent="' + i + '" data-fires="' + T.fires[i] + '" data-max="' + T.max[i] + '" data-dead="' +
         (isDead(T, i) ? 1 : 0) + '" data-dense="' + (isDense(T, i) ? 1 : 0) + '"';
}
function headHtml(s, T, st, extra) {
  var cols = [['index', '#'], ['density', 'density'], ['max', 'max act'], ['mean', 'mean act'], ['', 'top tokens'], ['', 'flags']];
  if (T.w_freq) cols = cols.concat([['w_freq', 'w_freq'], ['w_mag', 'w_mag'], ['w_final', 'w']]);
  var h = '<tr>';
  cols.forEach(function (c) {
    var arrow = c[0] && st.sort === c[0] ? (st.dir > 0 ? ' \u25b2' : ' \u25bc') : '';
    h += c[0] ? '<th class="sortable" data-key="' + c[0] + '">' + c[1] + arrow + '</th>' : '<th>' + c[1] + '</th>';
  });
  return h + (extra || '') + '</tr>';
}
function renderIndex(s, view) {
  setNav(s, view);
  return tableOf(s).then(function (T) {
    var st = stateOf(s), x = sae(s), F = T.fires.length, dead = 0, dense = 0;
    for (var i = 0; i < F; ++i) { dead += isDead(T, i) ? 1 : 0; dense += isDense(T, i) ? 1 : 0; }
    var h = '<h2 id="sae-title" data-sae="' + s + '">' + esc(x.name) + '</h2><p class="note">' + esc(x.architecture) + ', ' +
            F + ' latents' + (isHier(s) ? ' (' + x.n_parents + ' parents \u00d7 ' + x.children_per_parent + ' children)' : '') +
            ', ' + dead + ' dead, ' + dense + ' dense (density &gt; ' + META.settings.dense_threshold + ') \u00b7 <code>' +
            esc(x.sae_dir) + '</code></p>';
    h += '<h3>Firing density</h3>' + densitySvg(T);
    h += '<div class="controls"><input id="search" type="search" placeholder="search top tokens and contexts" value="' + esc(st.q) +
         '"> <select id="flag-filter">' + ['all', 'alive', 'dead', 'dense'].map(function (f) {
           return '<option' + (st.flag === f ? ' selected' : '') + '>' + f + '</option>';
         }).join('') + '</select>';
    if (isHier(s) && view === 'table')
      h += ' <select id="level-filter">' + ['all', 'parents', 'children'].map(function (f) {
        return '<option' + (st.level === f ? ' selected' : '') + '>' + f + '</option>';
      }).join('') + '</select>';
    h += ' <span id="count"></span> <button id="prev">\u2190</button> <button id="next">\u2192</button></div>';
    h += view === 'tree' ? '<div id="tree"></div>' : '<table id="latents"><thead></thead><tbody></tbody></table>';
    app.innerHTML = h;
    var redraw = function () { return draw(s, T, view); };
    var search = document.getElementById('search');
    search.oninput = function () { st.q = search.value; st.page = 0; redraw(); };
    document.getElementById('flag-filter').onchange = function (e) { st.flag = e.target.value; st.page = 0; redraw(); };
    var lv = document.getElementById('level-filter');
    if (lv) lv.onchange = function () { st.level = lv.value; st.page = 0; redraw(); };
    document.getElementById('prev').onclick = function () { st.page = Math.max(0, st.page - 1); redraw(); };
    document.getElementById('next').onclick = function () { st.page += 1; redraw(); };
    return redraw();
  });
}
function draw(s, T, view) {
  var st = stateOf(s);
  var ready = st.q.trim() ? load('sae' + s + '/search') : Promise.resolve();
  return ready.then(function () {
    var rows = filteredRows(s, T, st, view === 'tree');
    lastRows = rows;
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    var a = st.page * PAGE, b = Math.min(rows.length, a + PAGE);
    document.getElementById('count').textContent = (rows.length ? (a + 1) + '\u2013' + b : '0') + ' of ' + rows.length +
        (view === 'tree' ? ' parents' : ' latents');
    return view === 'tree' ? drawTree(s, T, st, rows.slice(a, b)) : drawTable(s, T, st, rows.slice(a, b));
  });
}
function drawTable(s, T, st, rows) {
  var tab = document.getElementById('latents'), extra = isHier(s) ? '<th>parent</th>' : '';
  tab.tHead.innerHTML = headHtml(s, T, st, extra);
  var h = '';
  rows.forEach(function (i) {
    var p = parentOf(s, i);
    h += '<tr' + rowAttrs(T, i) + '>' + cellsHtml(s, T, i) + (isHier(s) ? '<td>' + (p >= 0 ? link(s, p) : '') + '</td>' : '') + '</tr>';
  });
  tab.tBodies[0].innerHTML = h;
  Array.prototype.forEach.call(tab.tHead.querySelectorAll('th.sortable'), function (th) {
    th.onclick = function () {
      var k = th.getAttribute('data-key');
      if (st.sort === k) st.dir = -st.dir; else { st.sort = k; st.dir = k === 'index' ? 1 : -1; }
      st.page = 0;
      draw(s, T, 'table');
    };
  });
}
function drawTree(s, T, st, parents) {
  var h = '<table id="latents" class="tree"><thead>' + headHtml(s, T, st, '<th>share of parent</th>') + '</thead>';
  parents.forEach(function (p) {
    var kids = childrenOf(s, p), live = kids.filter(function (c) { return !isDead(T, c); }).length;
    h += '<tbody class="family" data-parent="' + p + '"><tr class="parent"' + rowAttrs(T, p) + '>' + cellsHtml(s, T, p) +
         '<td><button class="expand" aria-expanded="false">' + kids.length + ' children, ' + live +
         ' live \u25b8</button></td></tr>';
    kids.forEach(function (c) {
      var sh = share(T, s, c);
      h += '<tr class="child" hidden' + rowAttrs(T, c) + '>' + cellsHtml(s, T, c) + '<td class="share" data-share="' +
           (sh === null ? '' : sh) + '">' + (sh === null ? '\u2014' : pct(sh)) + '</td></tr>';
    });
    h += '</tbody>';
  });
  document.getElementById('tree').innerHTML = h + '</table>';
  Array.prototype.forEach.call(document.querySelectorAll('#tree button.expand'), function (btn) {
    btn.onclick = function () { expand(btn, btn.getAttribute('aria-expanded') !== 'true'); };
  });
  Array.prototype.forEach.call(document.querySelectorAll('#tree th.sortable'), function (th) {
    th.onclick = function () {
      var k = th.getAttribute('data-key');
      if (st.sort === k) st.dir = -st.dir; else { st.sort = k; st.dir = k === 'index' ? 1 : -1; }
      draw(s, T, 'tree');
    };
  });
}
function expand(btn, open) {
  btn.setAttribute('aria-expanded', open ? 'true' : 'false');
  btn.textContent = btn.textContent.replace(/[\u25b8\u25be]$/, open ? '\u25be' : '\u25b8');
  var body = btn.closest('tbody');
  Array.prototype.forEach.call(body.querySelectorAll('tr.child'), function (tr) { tr.hidden = !open; });
}

// ---------- latent page
function renderLatent(s, i) {
  setNav(s, 'table');
  return tableOf(s).then(function (T) {
    var F = T.fires.length;
    if (!(i >= 0 && i < F)) { app.innerHTML = '<p class="load-error">' + esc(sae(s).name) + ' has no latent ' + esc(i) + '.</p>'; return; }
    var p = parentOf(s, i), kids = isHier(s) && p < 0 ? childrenOf(s, i) : [];
    var waits = [latentOf(s, i)].concat(kids.map(function (c) { return latentOf(s, c); }));
    return Promise.all(waits).then(function (got) { latentPage(s, i, T, got[0], kids, got.slice(1)); });
  });
}
function latentPage(s, i, T, L, kids, kidData) {
  var x = sae(s), F = T.fires.length, max = T.max[i];
  var h = '<h2 id="latent-title" data-sae="' + s + '" data-latent="' + i + '">' + esc(x.name) + ' \u00b7 latent ' + i + ' ' +
          flagsHtml(T, i) + '</h2><p class="pager">' + (i > 0 ? link(s, i - 1, '\u2190 ' + (i - 1)) : '') + ' ' +
          (i + 1 < F ? link(s, i + 1, (i + 1) + ' \u2192') : '') + '</p>';
  h += '<dl class="stats"><dt>density</dt><dd>' + densityHtml(density(T, i)) + ' (' + T.fires[i].toLocaleString('en') +
       ' of ' + META.n_tokens.toLocaleString('en') + ' tokens)</dd><dt>max</dt><dd>' + num(max) + '</dd><dt>mean</dt><dd>' +
       num(T.mean[i]) + '</dd>';
  if (T.w_freq) h += '<dt>penalty weights</dt><dd>w_freq ' + num(T.w_freq[i]) + ', w_mag ' + num(T.w_mag[i]) + ', w ' + num(T.w_final[i]) + '</dd>';
  var p = parentOf(s, i);
  if (p >= 0) {
    var sh = share(T, s, i);
    h += '<dt>parent</dt><dd id="parent">' + link(s, p, 'latent ' + p) + ' \u00b7 child ' + ((i - x.n_parents) % x.children_per_parent) +
         ' \u00b7 fires on <span class="share">' + (sh === null ? '\u2014' : pct(sh)) + '</span> of its parent\u2019s firings</dd>';
  }
  h += '</dl>';
  if (kids.length) {
    h += '<section id="children"><h3>Children</h3><div class="kids">';
    kids.forEach(function (c, j) {
      var sh = share(T, s, c);
      h += '<div class="kid" data-latent="' + c + '"><h4>' + link(s, c, 'latent ' + c) + ' (child ' + j + ') ' + flagsHtml(T, c) +
           '</h4><p class="share" data-share="' + (sh === null ? '' : sh) + '">fires on ' + (sh === null ? '\u2014' : pct(sh)) +
           ' of the parent\u2019s firings (' + T.fires[c] + ' of ' + T.fires[i] + ')</p>' +
           examplesHtml(kidData[j].top, T.max[c], 10) + '</div>';
    });
    h += '</div></section>';
  }
  h += '<section id="top"><h3>Top activating contexts</h3>' + examplesHtml(L.top, max, L.top.length) + '</section>';
  h += '<section id="quantiles"><h3>Quantile bins</h3>';
  if (!L.bins.length) h += '<p class="note">No samples.</p>';
  for (var b = L.bins.length - 1; b >= 0; --b) {
    var bin = L.bins[b];
    h += '<div class="bin"><h4>activation ' + num(bin.lo) + ' \u2013 ' + num(bin.hi) + ' <span class="note">(' + bin.n +
         ' samples, ' + pct(bin.share) + ' of its firings)</span></h4>' +
         examplesHtml(bin.ex.slice().reverse(), max, bin.ex.length) + '</div>';
  }
  h += '</section><section id="hist"><h3>Activation histogram</h3>' + actHistSvg(L.hist || []) + '</section>';
  if (L.promoted) {
    var lt = function (list, cls) {
      return '<table class="logits ' + cls + '">' + list.map(function (e) {
        return '<tr><td><code class="tt">' + esc(tokText(e[0])) + '</code></td><td class="num">' + num(e[1]) + '</td></tr>';
      }).join('') + '</table>';
    };
    h += '<section id="logits"><h3>Logit effect</h3><div class="cols"><div><h4>promoted</h4>' + lt(L.promoted, 'promoted') +
         '</div><div><h4>suppressed</h4>' + lt(L.suppressed, 'suppressed') + '</div></div></section>';
    h += '<section id="neighbours"><h3>Nearest latents (decoder cosine)</h3><ul>' + L.neighbours.map(function (e) {
      return '<li>' + link(s, e[0], 'latent ' + e[0]) + ' <span class="cos">' + e[1].toFixed(3) + '</span> ' + tokList(T.top_tokens[e[0]], 5) + '</li>';
    }).join('') + '</ul></section>';
    if (L.matches.length)
      h += '<section id="matches"><h3>Best match in the other SAEs</h3><ul>' + L.matches.map(function (m) {
        return '<li class="match" data-sae="' + m.sae + '" data-latent="' + m.latent + '">' + esc(sae(m.sae).name) + ': ' +
               link(m.sae, m.latent, 'latent ' + m.latent) + ' <span class="cos">cos ' + m.cos.toFixed(3) + '</span></li>';
      }).join('') + '</ul></section>';
  }
  app.innerHTML = h;
}

// ---------- #selftest: drives the page like a user and writes the outcome into #selftest
function selftest() {
  var out = document.getElementById('selftest'), lines = [], failed = false;
  function check(name, ok, detail) {
    lines.push((ok ? 'ok ' : 'FAIL ') + name + (ok || !detail ? '' : ': ' + detail));
    failed = failed || !ok;
  }
  function attr(sel, a) {
    return Array.prototype.map.call(document.querySelectorAll(sel), function (e) { return Number(e.getAttribute(a)); });
  }
  function monotone(v, dir) { for (var k = 1; k < v.length; ++k) if (dir * (v[k] - v[k - 1]) < 0) return false; return true; }
  function click(sel) { document.querySelector(sel).click(); return new Promise(function (r) { setTimeout(r, 0); }); }
  function settle() { return new Promise(function (r) { setTimeout(r, 0); }); }
  var T;
  var run = renderIndex(0, 'table').then(function () { return tableOf(0); }).then(function (t) {
    T = t;
    return click('th[data-key="max"]');
  }).then(function () {
    var v = attr('#latents tbody tr', 'data-max');
    check('sort max descending', v.length > 0 && monotone(v, -1) && v[0] === Math.max.apply(null, T.max), v.slice(0, 5).join(','));
    return click('th[data-key="max"]');
  }).then(function () {
    var v = attr('#latents tbody tr', 'data-max');
    check('sort max ascending', monotone(v, 1) && v[0] === Math.min.apply(null, T.max), v.slice(0, 5).join(','));
    return click('th[data-key="density"]');
  }).then(function () {
    check('sort density descending', monotone(attr('#latents tbody tr', 'data-fires'), -1));
    return click('th[data-key="index"]');
  }).then(function () {
    var v = attr('#latents tbody tr', 'data-latent');
    check('sort index ascending', v[0] === 0 && monotone(v, 1));
    // search for the centre token of the strongest latent's top example
    var best = 0;
    for (var i = 0; i < T.max.length; ++i) if (T.max[i] > T.max[best]) best = i;
    var q = T.top_tokens[best].length ? (VOCAB[T.top_tokens[best][0]] || '').trim() : '';
    var input = document.getElementById('search');
    input.value = q;
    input.dispatchEvent(new Event('input'));
    return (q ? load('sae0/search') : Promise.resolve()).then(settle).then(function () {
      check('search "' + q + '" finds latent ' + best, !q || lastRows.indexOf(best) >= 0, lastRows.slice(0, 10).join(','));
      input.value = '';
      input.dispatchEvent(new Event('input'));
    });
  }).then(settle).then(function () {
    var sel = document.getElementById('flag-filter');
    sel.value = 'dead';
    sel.dispatchEvent(new Event('change'));
    return settle();
  }).then(function () {
    var n = T.fires.filter(function (f) { return f === 0; }).length, v = attr('#latents tbody tr', 'data-dead');
    check('filter dead', lastRows.length === n && v.every(function (d) { return d === 1; }), lastRows.length + ' vs ' + n);
    var sel = document.getElementById('flag-filter');
    sel.value = 'all';
    sel.dispatchEvent(new Event('change'));
    return settle();
  }).then(function () {
    check('filter all', lastRows.length === T.fires.length);
    var h = -1;
    for (var k = 0; k < META.saes.length; ++k) if (h < 0 && isHier(k)) h = k;
    if (h < 0) return;
    return renderIndex(h, 'tree').then(function () {
      var btn = document.querySelector('#tree button.expand');
      btn.click();
      var kids = btn.closest('tbody').querySelectorAll('tr.child:not([hidden])');
      check('tree expands children', kids.length === sae(h).children_per_parent, kids.length + ' rows');
    });
  }).then(function () {
    if (META.saes.length < 2) return;
    var sel = document.getElementById('sae-select');
    sel.value = '1';
    sel.dispatchEvent(new Event('change'));
    return settle().then(function () { return renderIndex(1, 'table'); }).then(function () {
      var t = document.getElementById('sae-title');
      check('SAE selector', t && t.getAttribute('data-sae') === '1');
    });
  });
  return run.then(function () {
    out.textContent = (failed ? 'FAIL' : 'PASS') + '\n' + lines.join('\n');
  }, function (e) {
    out.textContent = 'FAIL\n' + lines.join('\n') + '\nerror: ' + (e && e.message || e);
  }).then(function () { out.hidden = false; });
}

window.addEventListener('hashchange', route);
route();
})();
)JS";
}

}  // namespace saelab::dashboard
