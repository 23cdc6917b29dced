#!/usr/bin/env bash
# Rebuild assets/vendor/plotly-partial.min.js: plotly.js with only the trace types the dashboard
# draws (scatter, scattergl, bar), 1.5 MB instead of the full 4.8 MB bundle, so the Pareto chart's
# frame evaluates Plotly ~3x faster on every page load (docs/paint_speed.md).
#
#   bash scripts/build_plotly_bundle.sh [PLOTLY_JS_VERSION]
#
# The version defaults to the plotly.js that the installed Python plotly package ships (the chart
# component uses the partial bundle only when the two versions agree; otherwise it falls back to
# the package's full plotly.min.js). Needs node + npm (the npm registry); builds in a temporary
# folder with esbuild and the plugins of plotly.js's own esbuild-config.js (plotly.js's
# CUSTOM_BUNDLE.md, "npm run custom-bundle -- --traces scatter,scattergl,bar").
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-$REPO/.venv/bin/python}
VERSION=${1:-$("$PY" - <<'PY'
import pathlib, re, plotly
head = (pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()[:200]
print(re.search(r"plotly\.js v([0-9][^\s*]*)", head).group(1))
PY
)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "plotly.js@$VERSION" esbuild esbuild-plugin-glsl \
    esbuild-plugin-inline-css esbuild-plugin-environment buffer@6 stream-browserify@3
cat > entry.js <<'JS'
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/scattergl')]);
module.exports = Plotly;
JS
cat > build.js <<JS
const esbuild = require('esbuild');
const { environmentPlugin } = require('esbuild-plugin-environment');
const { glsl } = require('esbuild-plugin-glsl');
const InlineCSSPlugin = require('esbuild-plugin-inline-css');
esbuild.build({
  entryPoints: ['./entry.js'], outfile: 'plotly-partial.min.js',
  format: 'iife', globalName: 'Plotly', bundle: true, minify: true, sourcemap: false,
  plugins: [InlineCSSPlugin(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false })],
  alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
  define: { global: 'window', 'define.amd': 'false' }, target: 'es2016', legalComments: 'none',
  banner: { js: '/**\n* plotly.js v$VERSION partial bundle (traces: scatter, scattergl, bar) for OptiPoly,\n' +
                '* built by scripts/build_plotly_bundle.sh\n* Copyright 2012-2026, Plotly, Inc.\n' +
                '* All rights reserved.\n* Licensed under the MIT license\n*/' },
}).catch(() => process.exit(1));
JS
node build.js
install -m 644 plotly-partial.min.js "$REPO/assets/vendor/plotly-partial.min.js"
install -m 644 node_modules/plotly.js/LICENSE "$REPO/assets/vendor/plotly-LICENSE.txt"
echo "wrote assets/vendor/plotly-partial.min.js (plotly.js $VERSION, $(wc -c < plotly-partial.min.js) bytes)"
