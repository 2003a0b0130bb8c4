"""``panns-sed train``: fine-tune a model on a project's corrected events.

Progress goes to stderr as a tqdm bar, or with ``--json`` to stdout as JSON
lines (the protocol is documented in :mod:`panns_core.training.progress`).
SIGINT / SIGTERM stop after the current step and keep a resumable checkpoint
(exit code 130); ``--resume`` continues the latest interrupted run. Runs under
``torchrun --nproc_per_node N -m panns_core train ...`` as DistributedDataParallel.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="fine-tune a model on a project's accepted/edited/added events",
        description=(
            "Fine-tune a base model on the corrected events of a project and register the "
            "result as a new model. Strong (segment) targets from accepted, edited and "
            "added events, rejected events as negatives, validation on held-out recordings."
        ),
    )
    p.add_argument("--project", required=True, help="project file")
    p.add_argument(
        "--base",
        help="base model: registry name or .pth file (default: the default model); "
        "arch:NAME trains architecture NAME from its initialisation (from scratch on a "
        "CPU: arch:TinySED with --strategy full learns within a 15-minute budget)",
    )
    p.add_argument("--strategy", choices=("head", "partial", "full"), default="head",
                   help="what trains: the output layer, the last blocks, or everything "
                   "(default: head)")  # fmt: skip
    p.add_argument("--epochs", type=int,
                   help="maximum epochs (default 30; with --time-budget 1000: the budget "
                   "decides)")  # fmt: skip
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="wall time of the whole run: training (learning rate scheduled on "
                   "the share of the budget used), then calibration of the post-processing; "
                   "keeps the best epoch")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "int8"), default="auto",
                   help="auto (default): bf16 on CPUs with native bf16 units (AVX512-BF16, "
                        "AMX), else fp32; bf16: autocast; int8: head-only "
                        "runs compute the frozen embeddings with int8 convolutions "
                        "(faster on CPUs without bf16)")  # fmt: skip
    p.add_argument("--resume", nargs="?", const="latest", metavar="RUN_DIR",
                   help="continue an interrupted run (default: this project's latest)")  # fmt: skip
    p.add_argument("--run-dir", help="where the run's checkpoints go (default: data dir)")
    p.add_argument("--name", help="registry name of the result (default <project>-ft-<time>)")
    p.add_argument("--no-register", action="store_true", help="do not register the result")
    p.add_argument("--batch-size", type=int, default=16, help="global batch (default 16)")
    p.add_argument("--micro-batch", type=int, help="items per forward pass (default: batch)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument("--clip-seconds", type=float, default=10.0,
                   help="training clip length (default 10)")  # fmt: skip
    p.add_argument("--val-fraction", type=float, default=0.25,
                   help="share of recordings held out for validation (0: none)")  # fmt: skip
    p.add_argument("--patience", type=int, default=5,
                   help="early stopping: validations without a better validation mAP "
                   "(never before half of the run; default 5)")  # fmt: skip
    p.add_argument("--partial-blocks", type=int, default=2,
                   help="conv blocks trained by --strategy partial")  # fmt: skip
    p.add_argument("--mixup", type=float, default=0.0, metavar="PROB",
                   help="probability of mixup per chunk (default 0: slowed learning)")
    p.add_argument("--spec-augment", dest="spec_augment", action="store_true",
                   help="SpecAugment (off by default: it slowed learning)")  # fmt: skip
    p.add_argument("--no-spec-augment", dest="spec_augment", action="store_false",
                   help="no SpecAugment (the default)")  # fmt: skip
    p.add_argument("--no-feature-cache", action="store_true",
                   help="recompute the log-mel at every step (default: once per recording)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="do not calibrate thresholds and median filters on validation")
    p.set_defaults(spec_augment=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="progress as JSON lines on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading

    from ..errors import PannsError
    from ..training.config import TrainConfig
    from ..training.progress import JsonLines, TqdmReporter

    epochs = args.epochs or (1000 if args.time_budget else 30)
    config = TrainConfig(
        strategy=args.strategy, epochs=epochs, time_budget=args.time_budget,
        device=args.device, precision=args.precision, batch_size=args.batch_size,
        micro_batch=args.micro_batch, lr=args.lr, clip_seconds=args.clip_seconds,
        val_fraction=args.val_fraction, patience=args.patience,
        partial_blocks=args.partial_blocks, mixup_prob=args.mixup,
        spec_augment=args.spec_augment, seed=args.seed,
        feature_cache=not args.no_feature_cache, calibrate=not args.no_calibrate,
    )  # fmt: skip
    report = JsonLines(sys.stdout) if args.json else TqdmReporter(sys.stderr)
    done: dict = {}

    def progress(event: dict) -> None:
        if event["event"] == "done":
            done.update(event)  # reported after registration, with the model name
            return
        report(event)

    cancel = threading.Event()

    def stop(signum, frame) -> None:
        cancel.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        from ..training.run import fine_tune

        outcome = fine_tune(
            args.project, args.base, config,
            run_dir=args.run_dir or (None if args.resume in (None, "latest") else args.resume),
            resume=args.resume is not None, name=args.name, register=not args.no_register,
            progress=progress, cancel=cancel,
        )  # fmt: skip
    except PannsError as error:
        if args.json:
            report({"event": "error", "message": str(error)})
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if done:
        done.setdefault("result", {})["model"] = outcome.model_name
        report(done)
    if not args.json and outcome.model_name:
        print(f"registered model {outcome.model_name}", file=sys.stderr)
    return 130 if outcome.result.status == "cancelled" else 0
