#!/usr/bin/env sh
# Installs the desktop entry and icon for the current user (Linux, freedesktop).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$apps" "$icons"
cp "$here/panns_core/data/panns-annotator.desktop" "$apps/"
cp "$here/panns_core/data/icons/panns-annotator.svg" "$icons/"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "Installed $apps/panns-annotator.desktop"
