"""``panns-sed project``: create a project, add recordings, import/export annotations."""

from __future__ import annotations

import argparse
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aif", ".aiff", ".w64", ".caf")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "project", help="manage a project file (recordings, annotations)",
        description="Create a project, add recordings, import and export annotations.",
    )
    sub = parser.add_subparsers(dest="project_command", metavar="ACTION", required=True)

    p = sub.add_parser("create", help="create a new, empty project file")
    p.add_argument("project", type=Path)
    p.set_defaults(func=run_create)

    p = sub.add_parser("add", help="add audio files (or every audio file in folders)")
    p.add_argument("project", type=Path)
    p.add_argument("audio", type=Path, nargs="+")
    p.set_defaults(func=run_add)

    p = sub.add_parser("import", help="import annotation files into the project")
    p.add_argument("project", type=Path)
    p.add_argument("annotations", type=Path, nargs="+")
    p.add_argument("--recording", help="recording (path, name or id) for files that do not "
                                       "name theirs (Audacity, Sonic Visualiser)")
    p.add_argument("--format", help="format of the files (default: detect)")
    p.set_defaults(func=run_import)

    p = sub.add_parser("export", help="export the project's events")
    p.add_argument("project", type=Path)
    p.add_argument("--format", required=True, help="dcase, audacity, raven, sonic_visualiser, "
                                                   "label_studio")
    p.add_argument("--out", type=Path, required=True,
                   help="a file, or a folder for one file per recording")
    p.add_argument("--recording", action="append", help="only this recording (repeatable)")
    p.add_argument("--status", action="append",
                   help="only events with this status (repeatable; default: all but rejected)")
    p.set_defaults(func=run_export)

    p = sub.add_parser("info", help="summarise a project")
    p.add_argument("project", type=Path)
    p.set_defaults(func=run_info)

    p = sub.add_parser("relocate", help="find moved recordings in a folder by content")
    p.add_argument("project", type=Path)
    p.add_argument("folder", type=Path)
    p.set_defaults(func=run_relocate)

    p = sub.add_parser("backup", help="copy a project safely, even while it is open",
                       description="Copy the project with SQLite's backup API: the copy "
                                   "holds every commit, also those a window or another "
                                   "command made moments ago, and is checked before it "
                                   "is put in place.")
    p.add_argument("project", type=Path)
    p.add_argument("dest", type=Path, help="the copy's file name, or a folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing copy")
    p.set_defaults(func=run_backup)

    p = sub.add_parser("salvage", help="copy what is readable of a damaged project "
                                       "into a new one",
                       description="Read a project that fails its checks (damaged, or "
                                   "holding triggers/views this program did not make) "
                                   "without changing it, and write every readable row "
                                   "into a new project.")
    p.add_argument("project", type=Path, help="the damaged project (only read)")
    p.add_argument("new", type=Path, help="the new project file (must not exist)")
    p.set_defaults(func=run_salvage)


def _open(path: Path, create: bool = False):
    from ..annotations.store import ProjectStore

    return ProjectStore(path, create=create)


def run_create(args: argparse.Namespace) -> int:
    from ..errors import StoreError

    if args.project.exists():
        raise StoreError(f"{args.project} exists already; choose another name.")
    with _open(args.project, create=True):
        pass
    print(f"created {args.project}")
    return 0


def run_add(args: argparse.Namespace) -> int:
    files: list[Path] = []
    for item in args.audio:
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            files.append(item)
    with _open(args.project) as store:
        for file in files:
            rec = store.recording(store.add_recording(file))
            print(f"{rec.id}\t{rec.duration:.3f} s\t{rec.sample_rate} Hz\t{rec.path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from ..annotations.exchange import import_operation, plan_import
    from ..errors import PannsError

    with _open(args.project) as store:
        fallback = store.recording_id(args.recording) if args.recording else None
        items = plan_import(store, args.annotations, format=args.format, fallback=fallback)
        failed = [item for item in items if not item.ok]
        if failed:
            raise PannsError("\n".join(item.error for item in failed))
        for item in items:
            op = import_operation(store, [item])
            store.apply(op)
            store.ensure_labels(item.events["label"])
            added = len(op.rows)
            already = item.already + item.n_events - added
            note = f" ({already} already in the project, not added again)" if already else ""
            print(f"{added} events from {item.path}{note}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..annotations.exchange import plan_export, write_export

    with _open(args.project) as store:
        recordings = [store.recording_id(r) for r in args.recording] if args.recording else None
        plan = plan_export(store, args.format, args.out, recordings=recordings,
                           statuses=args.status,
                           per_recording=args.out.is_dir() or not args.out.suffix)
    for path, frame in zip(write_export(plan), (frame for _, frame in plan.files)):
        print(f"{len(frame)} events -> {path}")
    if not plan.files:
        print(plan.describe())
    return 0


def run_info(args: argparse.Namespace) -> int:
    with _open(args.project) as store:
        info = store.info()
        print(f"project\t{info['path']} (schema {info['schema_version']})")
        print(f"recordings\t{info['recordings']} ({info['missing_recordings']} missing), "
              f"{info['duration']:.1f} s")
        events = info["events"]
        print(f"events\t{sum(events.values())} "
              f"({', '.join(f'{k} {v}' for k, v in events.items() if v)})")
        print(f"labels\t{info['event_labels']} in events, {info['labels']} in the vocabulary")
        print(f"models\t{info['models']}; training runs\t{info['training_runs']}")
        for rec in store.recordings():
            flag = "" if rec.exists else "\tMISSING"
            print(f"{rec.id}\t{rec.path}{flag}")
    return 0


def run_relocate(args: argparse.Namespace) -> int:
    with _open(args.project) as store:
        found = store.relocate(args.folder)
        for rec_id, path in found.items():
            print(f"{rec_id}\t{path}")
        missing = store.missing_recordings()
    print(f"found {len(found)}; still missing {len(missing)}")
    return 0 if not missing else 1


def run_backup(args: argparse.Namespace) -> int:
    with _open(args.project) as store:
        dest = store.backup(args.dest, overwrite=args.overwrite)
        events = sum(store.count_events().values())
        recordings = len(store.recordings())
    print(f"backed up {args.project} ({recordings} recordings, {events} events) to {dest}")
    return 0


def run_salvage(args: argparse.Namespace) -> int:
    from ..annotations.store.salvage import salvage

    report = salvage(args.project, args.new)
    print(report.describe())
    return 0
