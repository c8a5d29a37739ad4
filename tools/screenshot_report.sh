#!/usr/bin/env bash
# Render a scan's report.html in headless Chromium and save full-width screenshots, to look at
# the report as a reader would (layout, overflow, labels, figures).
#
# Usage: tools/screenshot_report.sh REPORT_HTML [OUT_PREFIX] [HEIGHT]
#   e.g. .venv/bin/mrjax demo --out /tmp/demo_report && tools/screenshot_report.sh /tmp/demo_report/report.html /tmp/r
# Writes OUT_PREFIX.png (1280 x HEIGHT, default 4000 px), OUT_PREFIX_narrow.png (800 px wide, to
# check that wide tables wrap or scroll inside the page instead of pushing it sideways) and
# OUT_PREFIX_open.png (1280 px, 3 x HEIGHT, every <details> section unfolded).
# tools/split_screenshot.py cuts a tall screenshot into screen-sized tiles.
# Needs chromium (Debian: apt-get install chromium; fonts-noto-cjk for CJK trait names).
set -euo pipefail
report=$(realpath "${1:?usage: $0 REPORT_HTML [OUT_PREFIX] [HEIGHT]}")
prefix=${2:-/tmp/report_screenshot}
height=${3:-4000}
browser=$(command -v chromium || command -v chromium-browser || command -v chromium-headless-shell || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "no chromium found: install it (apt-get install chromium) to take screenshots" >&2
  exit 2
fi
opened=$(mktemp --suffix=.html)
trap 'rm -f "$opened"' EXIT
sed 's/<details>/<details open>/g' "$report" > "$opened"
shoot() {  # WIDTH HEIGHT FILE PAGE
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$3" \
    --window-size="$1,$2" "file://$4" >/dev/null 2>&1
  echo "wrote $3 ($1x$2)"
}
shoot 1280 "$height" "$prefix.png" "$report"
shoot 800 "$height" "${prefix}_narrow.png" "$report"
shoot 1280 $((3 * height)) "${prefix}_open.png" "$opened"
