#!/usr/bin/env sh
# Install (or with --uninstall remove) the desktop entry of PANNs Annotator for the
# current user (Linux, freedesktop): the .desktop file, the icon, and a MIME type for
# .panns projects (application/x-panns-project), then refresh the MIME and desktop
# databases when their tools are installed.
#
#   packaging/install-desktop-entry.sh [--exec COMMAND] [--uninstall]
#
# Files go under ${XDG_DATA_HOME:-~/.local/share}: applications/, icons/hicolor/scalable/
# apps/, mime/packages/. The entry runs COMMAND (default: the bundle's executable when
# this script sits in a built bundle, else panns-annotator from PATH) with the file
# opened (%f). Works from the repository and from dist/panns-annotator/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
apps="$data_home/applications"
icons="$data_home/icons/hicolor/scalable/apps"
mime="$data_home/mime/packages"
entry="$apps/panns-annotator.desktop"
icon="$icons/panns-annotator.svg"
mime_xml="$mime/panns-annotator.xml"

command=""
uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --uninstall) uninstall=1 ;;
        --exec) shift; command=${1:?--exec needs a command} ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install-desktop-entry.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

refresh() {
    if command -v update-mime-database >/dev/null 2>&1; then
        update-mime-database "$data_home/mime" >/dev/null 2>&1 || true
    fi
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database "$apps" >/dev/null 2>&1 || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t "$data_home/icons/hicolor" >/dev/null 2>&1 || true
    fi
}

if [ "$uninstall" -eq 1 ]; then
    rm -f "$entry" "$icon" "$mime_xml"
    [ -d "$apps" ] && refresh
    echo "Removed the PANNs Annotator desktop entry, icon and MIME type."
    exit 0
fi

# Where the shipped files are: the repository (packaging/..) or a bundle (_internal/).
for candidate in "$here/../panns_core/data" "$here/_internal/panns_core/data"; do
    if [ -f "$candidate/panns-annotator.desktop" ]; then
        data=$(cd "$candidate" && pwd)
        break
    fi
done
if [ -z "${data:-}" ]; then
    echo "install-desktop-entry.sh: cannot find panns_core/data next to $here" >&2
    exit 1
fi
if [ -z "$command" ]; then
    if [ -x "$here/panns-annotator" ]; then
        command="$here/panns-annotator"
    else
        command=panns-annotator
    fi
fi

mkdir -p "$apps" "$icons" "$mime"
sed "s|^Exec=panns-annotator |Exec=\"$command\" |" "$data/panns-annotator.desktop" > "$entry.tmp"
mv "$entry.tmp" "$entry"
cp "$data/icons/panns-annotator.svg" "$icon"
cat > "$mime_xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/x-panns-project">
    <comment>PANNs Annotator project</comment>
    <sub-class-of type="application/vnd.sqlite3"/>
    <glob pattern="*.panns" weight="60"/>
    <icon name="panns-annotator"/>
  </mime-type>
</mime-info>
XML
refresh
echo "Installed $entry (runs $command), $icon and $mime_xml"
