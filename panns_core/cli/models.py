"""``panns-sed models``: list, download, import, inspect, remove and choose models."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, download, import, inspect, remove and choose models",
        description="Manage the installed models (downloaded, imported, fine-tuned).",
    )
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")

    p = sub.add_parser("list", help="installed models and the ones that can be downloaded")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=run_list)

    p = sub.add_parser("download", help="download, verify and install a catalogue model")
    p.add_argument("name", help="catalogue name, e.g. Cnn14_DecisionLevelMax")
    p.add_argument("--url-base", help="download from this mirror instead of Zenodo")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_download)

    p = sub.add_parser("import", help="validate a local checkpoint and add it")
    p.add_argument("path", help="a .pth checkpoint (PANNs release or panns-annotator's own)")
    p.add_argument("--name", help="name to install it under (default: the file name)")
    p.set_defaults(func=run_import)

    p = sub.add_parser("info", help="details of an installed (or downloadable) model")
    p.add_argument("name")
    p.add_argument("--labels", action="store_true", help="also print every class name")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    p.set_defaults(func=run_info)

    p = sub.add_parser("remove", help="uninstall a model and delete its file")
    p.add_argument("name")
    p.set_defaults(func=run_remove)

    p = sub.add_parser("default", help="show or set the model used when none is named")
    p.add_argument("name", nargs="?", help="model to make the default")
    p.set_defaults(func=run_default)


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.0f} MB"


def run_list(args: argparse.Namespace) -> int:
    from ..hub.installed import ModelRegistry

    registry = ModelRegistry()
    models = registry.list_models()
    default = _current_default(registry)
    installed_catalogue = {m.catalogue_name for m in models if m.catalogue_name}
    available = [e for e in registry.catalogue if e.name not in installed_catalogue]
    if args.json:
        print(json.dumps({
            "default": default,
            "installed": [{**m.to_dict(), "labels": None} for m in models],
            "available": [{"name": e.name, "architecture": e.architecture, "mAP": e.mean_ap,
                           "size": e.size, "framewise": e.framewise} for e in available],
        }, indent=1))
        return 0
    if models:
        print("Installed models (* = default):")
        for m in models:
            mark = "*" if m.name == default else " "
            sed = "SED" if m.framewise else "tagging" if m.framewise is False else "?"
            print(f" {mark} {m.name:32s} {m.architecture:24s} {m.classes_num:4d} classes "
                  f"{m.sample_rate // 1000:2d} kHz {sed:7s} {m.origin:10s} {_mb(m.size):>7s} "
                  f"{m.created[:10]}")
    else:
        print("No model installed.")
    if available:
        print("Available to download (`panns-sed models download NAME`):")
        for e in available:
            sed = "SED" if e.framewise else "tagging"
            mean_ap = "" if e.mean_ap is None else f"mAP {e.mean_ap:.3f}"
            print(f"   {e.name:32s} {e.sample_rate // 1000:2d} kHz "
                  f"{sed:7s} {mean_ap:9s} {_mb(e.size):>7s}")
    return 0


def _current_default(registry) -> str | None:
    from ..errors import ModelNotFoundError

    try:
        return registry.default_model().name
    except ModelNotFoundError:
        return None


def run_download(args: argparse.Namespace) -> int:
    from ..hub.installed import ModelRegistry

    registry = ModelRegistry()
    entry = registry.catalogue.get(args.name)
    existing = registry.find(entry.name)
    if existing is not None and existing.catalogue_name == entry.name \
            and existing.path.is_file():
        print(f"{existing.name} is already installed ({existing.path}).")
        return 0
    bar = None

    def progress(p) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=p.total, initial=p.bytes_done, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=entry.name, file=sys.stderr, leave=True)
        bar.update(p.bytes_done - bar.n)

    try:
        record = registry.install_download(entry.name, progress=progress,
                                           base_url=args.url_base)
    finally:
        if bar is not None:
            bar.close()
    checked = "sha256" if entry.sha256 else "md5"
    print(f"Installed {record.name} ({_mb(record.size)}, {checked} verified) at {record.path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from ..hub.installed import ModelRegistry

    record = ModelRegistry().import_checkpoint(args.path, args.name)
    print(f"Imported {record.name}: {record.architecture}, {record.classes_num} classes, "
          f"{record.sample_rate} Hz, {_mb(record.size)} -> {record.path}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..hub.installed import ModelRegistry

    registry = ModelRegistry()
    record = registry.find(args.name)
    if record is None:
        entry = registry.catalogue.get(args.name)  # not installed: show the catalogue entry
        data = {"name": entry.name, "installed": False, "architecture": entry.architecture,
                "sample_rate": entry.sample_rate, "framewise": entry.framewise,
                "classes_num": entry.classes_num, "mAP": entry.mean_ap, "size": entry.size,
                "sha256": entry.sha256, "md5": entry.md5, "url": entry.download_url(),
                "license": entry.license, "note": entry.note or None}
        labels: list[str] = []
    else:
        data = {**record.to_dict(), "installed": True,
                "default": record.name == _current_default(registry)}
        labels = data.pop("labels")
    if args.json:
        print(json.dumps({**data, **({"labels": labels} if args.labels else {})}, indent=1))
        return 0
    for key, value in data.items():
        if value is None or value == {}:
            continue
        if key == "size":
            value = f"{value} bytes ({_mb(value)})"
        print(f"{key + ':':16s}{value}")
    if labels and args.labels:
        for index, name in enumerate(labels):
            print(f"{index}\t{name}")
    elif labels:
        more = f", ... ({len(labels)} in all; --labels lists them)" if len(labels) > 5 else ""
        print(f"{'labels:':16s}{', '.join(labels[:5])}{more}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from ..hub.installed import ModelRegistry

    record = ModelRegistry().remove(args.name)
    print(f"Removed {record.name} (deleted {record.path}).")
    return 0


def run_default(args: argparse.Namespace) -> int:
    from ..hub.installed import ModelRegistry

    registry = ModelRegistry()
    if args.name:
        record = registry.set_default(args.name)
        print(f"Default model: {record.name}")
        return 0
    record = registry.default_model()  # raises with advice when nothing is installed
    print(record.name)
    return 0
