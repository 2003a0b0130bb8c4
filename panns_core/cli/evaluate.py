"""``panns-sed evaluate``: compare detected events (or scores) with a reference.

Event-based (200 ms onset collar, offset collar max(200 ms, 20 % of length)) and
segment-based (1 s) F1 / error rate with sed_eval, per class and overall; PSDS
scenarios 1 and 2 with sed_scores_eval when ``--scores DIR`` gives score TSVs.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="event/segment F1 and error rate, PSDS, against reference annotations",
        description=(
            "Evaluate estimated events against reference annotations with sed_eval "
            "(event-based: 200 ms onset collar, offset collar max(200 ms, 20% of length); "
            "segment-based: 1 s), and PSDS scenarios 1 and 2 from score TSVs "
            "(sed_scores_eval layout) with --scores."
        ),
    )
    parser.add_argument("--reference", required=True, help="reference annotation file")
    parser.add_argument("--estimated", help="estimated events (any supported annotation format)")
    parser.add_argument(
        "--scores", help="directory of score TSVs (onset offset <class>...), one per recording"
    )
    parser.add_argument(
        "--durations",
        help="TSV 'filename duration' (PSDS needs it; default: end of each score table)",
    )
    parser.add_argument(
        "--labels", help="comma-separated classes to evaluate (default: every label seen)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import PannsError
    from ..evaluation import io, psds, report

    if not args.estimated and not args.scores:
        raise PannsError("nothing to evaluate: give --estimated EVENTS and/or --scores DIR.")
    reference = io.read_events(args.reference)
    labels = [s.strip() for s in args.labels.split(",") if s.strip()] if args.labels else None
    durations = io.read_durations(args.durations) if args.durations else None
    result: dict = {}
    if args.estimated:
        estimated = io.read_events(args.estimated)
        result.update(
            report.evaluate_events(reference, estimated, labels=labels, durations=durations)
        )
    if args.scores:
        tables = io.read_score_tables(args.scores)
        if durations is None:
            durations = {k: float(t["offset"].max()) for k, t in tables.items()}
        result["psds"] = psds.evaluate(tables, reference, durations)
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(report.format_report(result))
    return 0
