#!/usr/bin/env bash
# Build the one-folder desktop bundle: dist/panns-annotator/ holding the executable
# panns-annotator (the window) and panns-sed (a link to it: the command line).
#
#   packaging/build.sh            # ~10 min; then packaging/check_bundle.sh
#
# The build runs in its own venv (build/bundle-venv; BUNDLE_VENV to choose another) made
# from the README's install command, so nothing of a dev install leaks into the bundle.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
venv=${BUNDLE_VENV:-$root/build/bundle-venv}

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip
pip install -q torch==2.13.0   # the CPU wheel first, so nothing pulls the CUDA build
pip install -q . pyinstaller
# sed_scores_eval pulls the obsolete `pathlib` backport, which PyInstaller refuses; the
# standard library's pathlib is what runs either way.
pip uninstall -q -y pathlib 2>/dev/null || true

started=$(date +%s)
"$venv/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/panns-annotator.spec
ln -sf panns-annotator dist/panns-annotator/panns-sed
cp packaging/install-desktop-entry.sh dist/panns-annotator/
echo "Built dist/panns-annotator/ in $(( $(date +%s) - started )) s:" \
     "$(du -sh dist/panns-annotator | cut -f1)"
