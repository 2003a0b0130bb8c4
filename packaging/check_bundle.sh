#!/usr/bin/env bash
# Check that a built bundle (packaging/build.sh) runs on a machine without the venv:
# every bundled program runs under `env -i` (empty environment, empty PATH), so nothing
# of a Python installation can help it.
#
#   packaging/check_bundle.sh [BUNDLE_DIR] [SCREENSHOT.png]
#
# 1. panns-sed imports a checkpoint, detects on the shipped demo and evaluates;
# 2. panns-annotator starts under Xvfb with a fresh home, opens the demo, detects in it
#    (Ctrl+D, with the model step 1 imported), is still alive after a few seconds; the
#    screen is saved (ImageMagick `import`) to SCREENSHOT.png: look at it;
# 3. prints the bundle's size and the window's start time (launch -> window mapped).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle=$(cd "${1:-$root/dist/panns-annotator}" && pwd)
shot=${2:-$root/build/bundle-window.png}
# Python with torch, only to make the test checkpoint (default: build.sh's venv).
python=${PYTHON:-$root/build/bundle-venv/bin/python}
[ -x "$python" ] || python=python3
alive_seconds=${ALIVE_SECONDS:-8}
mkdir -p "$(dirname "$shot")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
home="$work/home"
mkdir -p "$home"
demo="$bundle/_internal/panns_core/data/demo.flac"

# A tiny checkpoint (TinySED, seeded weights) made with the repository's code: what is
# checked is the bundle, not how the file was made.
PYTHONPATH="$root" "$python" -W ignore - "$work/tiny.pth" <<'PY'
import sys

import torch

from panns_core.hub.checkpoints import save_checkpoint
from panns_core.models import architecture_spec, build_model

labels = ["Speech", "Music", "Bird", "Dog", "Vehicle"]
torch.manual_seed(0)
save_checkpoint(sys.argv[1], build_model("TinySED", len(labels)), architecture="TinySED",
                feature_config=architecture_spec("TinySED").feature_config, labels=labels)
PY

clean() { env -i HOME="$home" PANNS_ANNOTATOR_HOME="$home/panns" "$@"; }
fail() { echo "check_bundle: $*" >&2; exit 1; }

echo "== panns-sed (env -i)"
clean "$bundle/panns-sed" --version
clean "$bundle/panns-sed" models import "$work/tiny.pth" --name bundle-tiny 2> "$work/err"
! grep -q Traceback "$work/err" || { cat "$work/err"; fail "models import printed a traceback"; }
clean "$bundle/panns-sed" detect "$demo" --model bundle-tiny --device cpu --threshold 0.1 \
    --out "$work/demo.tsv" --quiet
head -1 "$work/demo.tsv" | grep -q '^filename' || fail "detect wrote no DCASE file"
echo "detect: $(( $(wc -l < "$work/demo.tsv") - 1 )) events on the demo"
clean "$bundle/panns-sed" evaluate --reference "$work/demo.tsv" --estimated "$work/demo.tsv" \
    | head -1

echo "== panns-annotator under Xvfb (env -i)"
cat > "$work/window.sh" <<'SH'
#!/usr/bin/env bash
# Inside xvfb-run: start the window with an empty environment, time it to the first
# mapped top-level window, keep it a few seconds, take a screenshot, stop it.
set -u
bundle=$1 home=$2 shot=$3 alive=$4 log=$5
started=$(date +%s.%N)
env -i HOME="$home" PANNS_ANNOTATOR_HOME="$home/panns" DISPLAY="$DISPLAY" \
    XAUTHORITY="${XAUTHORITY:-}" "$bundle/panns-annotator" --demo 2> "$log" &
pid=$!
mapped=""
for _ in $(seq 1 600); do
    if xdotool search --onlyvisible --name "PANNs" >/dev/null 2>&1; then
        mapped=$(date +%s.%N); break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$mapped" ] || { echo "no window appeared"; kill "$pid" 2>/dev/null; exit 1; }
echo "window mapped after $(awk "BEGIN{printf \"%.1f\", $mapped - $started}") s"
sleep 3
# Detect in the demo (Ctrl+D) with the model panns-sed imported into the same home.
window=$(xdotool search --onlyvisible --name "PANNs" | head -1)
xdotool windowfocus --sync "$window" 2>/dev/null; xdotool key --clearmodifiers ctrl+d
sleep "$alive"
kill -0 "$pid" 2>/dev/null || { echo "the window died"; exit 1; }
import -window root "$shot"
kill -TERM "$pid"; wait "$pid" 2>/dev/null
exit 0
SH
xvfb-run -a -s "-screen 0 1400x900x24" bash "$work/window.sh" "$bundle" "$home" "$shot" \
    "$alive_seconds" "$work/window.err" || { cat "$work/window.err"; fail "the window check failed"; }
! grep -q Traceback "$work/window.err" || { cat "$work/window.err"; fail "the window printed a traceback"; }
echo "screenshot: $shot"
echo "bundle size: $(du -sh "$bundle" | cut -f1) ($(du -s --apparent-size -m "$bundle" | cut -f1) MB)"
echo "check_bundle: the bundle works"
