#!/usr/bin/env bash
# Measures the field app's figures for docs/benchmarks.md: its size as served (gzip), opening a 500-place grid
# offline in Chromium, and recording a visit until it is on disk. Needs what the browser tests need
# (scripts/browser-deps.sh). DOORSTEP_BENCH_PLACES and DOORSTEP_BENCH_CLI_VISITS change the grid's size.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/browser-deps.sh
(cd web/field && node build.mjs --check)
cargo test --locked --test field_app_browser field_app_figures -- --ignored --nocapture
