#!/usr/bin/env bash
# Render a scan's report.html in headless Chromium and save full-width screenshots, to look at
# the report as a reader would (layout, overflow, labels, figures).
#
# Usage: tools/screenshot_report.sh REPORT_HTML [OUT_PREFIX] [HEIGHT]
#   e.g. .venv/bin/mrjax demo --out /tmp/demo_report && tools/screenshot_report.sh /tmp/demo_report/report.html /tmp/r
# Writes OUT_PREFIX.png (1280 x HEIGHT, default 4000 px) and OUT_PREFIX_narrow.png (800 px wide,
# to check that wide tables wrap or scroll inside the page instead of pushing it sideways).
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
for spec in "1280:$prefix.png" "800:${prefix}_narrow.png"; do
  width=${spec%%:*}
  file=${spec#*:}
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$file" \
    --window-size="$width,$height" "file://$report" >/dev/null 2>&1
  echo "wrote $file (${width}x$height)"
done
