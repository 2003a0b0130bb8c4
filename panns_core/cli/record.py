"""``panns-sed record``: scripted capture from an input device."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record from an input device to a WAV or FLAC file",
        description=(
            "Record from an input device. The file is written as the audio arrives and "
            "stays readable if the program is killed. With --seconds the recording stops "
            "after exactly that many samples; without it, Ctrl-C (or SIGTERM) stops it."
        ),
    )
    parser.add_argument("--out", "-o", help="output file (.wav or .flac)")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds of audio")
    parser.add_argument("--device", help="input device index or name (default: system default)")
    parser.add_argument("--rate", type=int, default=32000, help="sample rate in Hz (32000)")
    parser.add_argument("--channels", type=int, default=1, help="channel count (1)")
    parser.add_argument(
        "--dtype", choices=("int16", "int32", "float32"), default="int16",
        help="sample format (int16)",
    )
    parser.add_argument("--blocksize", type=int, default=1024, help="frames per block (1024)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.add_argument(
        "--list-devices", action="store_true", help="list input devices and their rates; exit"
    )
    parser.set_defaults(func=run)


def _list_devices() -> int:
    from ..recording import list_input_devices, supported_rates

    devices = list_input_devices()
    if not devices:
        print("No input devices found.")
        return 1
    for device in devices:
        rates = ", ".join(str(r) for r in supported_rates(device))
        print(f"{device}\n    rates: {rates or 'none of the common ones'}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import AudioError

    if args.list_devices:
        return _list_devices()
    if not args.out:
        raise AudioError("Say where to record: --out FILE (.wav or .flac).")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise AudioError(f"{out} already exists; choose another name or add --force.")
    if args.seconds is not None and args.seconds <= 0:
        raise AudioError("--seconds must be positive.")
    if args.channels < 1 or args.rate < 1 or args.blocksize < 1:
        raise AudioError("--rate, --channels and --blocksize must be positive.")

    from ..recording import Recorder

    recorder = Recorder(
        out,
        device=args.device,
        sample_rate=args.rate,
        channels=args.channels,
        dtype=args.dtype,
        blocksize=args.blocksize,
        max_seconds=args.seconds,
        ring_seconds=1.0,
    )
    interrupted = threading.Event()

    def on_signal(signum, frame) -> None:  # SIGINT/SIGTERM: stop cleanly, keep the file
        interrupted.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        recorder.start()
        print(f"Recording from {recorder.device.name!r} to {out} ...", file=sys.stderr)
        while not recorder.wait(0.1) and not interrupted.is_set():
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        result = recorder.stop(close_timeout=1.0) if recorder.state.value != "idle" else None
    if result is None:  # pragma: no cover - start() raised before the stream existed
        return 1
    print(
        f"Recorded {result.duration:.3f} s ({result.frames} frames, {result.sample_rate} Hz, "
        f"{result.channels} ch, {result.dtype}) to {result.path}; "
        f"{result.overflows} input overflow(s)."
    )
    if result.overflows:
        print(
            "panns-sed: warning: the device dropped audio (input overflows); close other "
            "programs or use a larger --blocksize.",
            file=sys.stderr,
        )
    code = 0
    if result.error:
        print(f"panns-sed: error: {result.error}", file=sys.stderr)
        code = 1
    elif interrupted.is_set() and args.seconds is not None:
        code = 130
    if recorder.stream_abandoned:
        # The driver still holds its stream; PortAudio's shutdown would wait for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
