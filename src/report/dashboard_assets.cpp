// The dashboard page: one HTML file with its CSS and the viewer's JavaScript inline (no network, no
// CDN). The data comes from data/*.js files (dashboard_site.hpp), each `window.SAELAB_DATA[key] = ...`:
// meta.js and vocab.js by <script> tags, the per-SAE tables and per-latent chunks by inserting a
// <script> element when a page needs them (fetch() of JSON is refused on file://).
// Routes: #sae=S (latent table), #sae=S&view=tree (hierarchy), #sae=S&latent=I (latent page),
// #selftest (drives the page like a user and writes the outcome into <pre id="selftest">).
#include "dashboard_site.hpp"

namespace saelab::dashboard {

namespace {

const char* const kPageHead = R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>saelab dashboard</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
header { background: #243447; color: #eee; padding: 8px 16px; }
header h1 { font-size: 16px; margin: 0 12px 0 0; display: inline; }
header a { color: #9cd3ff; margin-left: 10px; }
header code { color: #ffd58a; }
main { padding: 8px 16px 40px; }
h2 { margin: 12px 0 4px; } h3 { margin: 18px 0 6px; border-bottom: 1px solid #ddd; } h4 { margin: 8px 0 4px; }
.note { color: #666; }
a { color: #0b62c4; text-decoration: none; } a:hover { text-decoration: underline; }
table { border-collapse: collapse; }
#latents th, #latents td { padding: 2px 8px; border-bottom: 1px solid #e6e6e6; text-align: left; vertical-align: top; }
#latents th { background: #eef1f5; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; } th.sortable:hover { background: #dde4ee; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.dens { white-space: nowrap; }
.dbar { display: inline-block; height: 8px; background: #6a9fd8; margin-right: 6px; vertical-align: middle; }
code.tt { background: #f0f0f0; border: 1px solid #ddd; border-radius: 3px; padding: 0 3px; white-space: pre; }
.flag { font-size: 11px; border-radius: 3px; padding: 0 4px; margin-right: 4px; color: #fff; }
.flag.dead { background: #888; } .flag.dense { background: #c0392b; }
.controls { margin: 10px 0; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
#search { width: 320px; padding: 3px 6px; }
tr.child td:first-child { padding-left: 24px; }
tr.parent { background: #f4f7fb; }
.chart text { font-size: 10px; fill: #444; }
.chart .bar { fill: #6a9fd8; } .chart .bar.dead { fill: #999; }
.chart .axis { stroke: #444; } .chart .threshold { stroke: #c0392b; stroke-dasharray: 4 3; }
.ex { display: flex; gap: 8px; align-items: baseline; margin: 2px 0; font-family: ui-monospace, monospace; font-size: 12.5px; }
.exv { min-width: 52px; text-align: right; color: #555; }
.ctx { white-space: pre-wrap; }
.tok { border-radius: 2px; }
.tok.max { font-weight: bold; outline: 1.5px solid #b34700; }
.exsrc { color: #aaa; font-size: 11px; white-space: nowrap; }
.kids { display: flex; gap: 12px; overflow-x: auto; align-items: flex-start; }
.kid { flex: 1 1 0; min-width: 320px; border: 1px solid #ddd; border-radius: 4px; padding: 4px 8px; background: #fff; }
.cols { display: flex; gap: 32px; }
.logits td { padding: 1px 8px; }
dl.stats { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dl.stats dt { color: #666; } dl.stats dd { margin: 0; }
.load-error { color: #b00; font-weight: bold; }
#selftest { background: #fff8d0; padding: 8px; }
</style>
<script>window.SAELAB_DATA = {};</script>
<script src="data/meta.js"></script>
<script src="data/vocab.js"></script>
</head><body>
<header><h1>saelab dashboard</h1><span id="nav"></span></header>
<main id="app">Loading…</main>
<div id="errors"></div>
<pre id="selftest" hidden></pre>
<noscript>This dashboard needs JavaScript.</noscript>
<script>
)HTML";

const char* const kPageTail = R"HTML(</script>
</body></html>
)HTML";

}  // namespace

std::string index_html() { return std::string(kPageHead) + viewer_js() + kPageTail; }

}  // namespace saelab::dashboard
