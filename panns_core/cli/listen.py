"""``panns-sed listen``: write a recording as the window plays it for listening closely:
time-expanded, band-passed to a box's band, heterodyned (one channel or the mix)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "listen",
        help="write a time-expanded, band-passed or heterodyned copy of a recording",
        description=(
            "Write what the annotator plays with its listening controls: --speed 0.1 "
            "stretches time ten times and moves every frequency down ten times (a 40 kHz "
            "bat call is heard at 4 kHz); --band LOW HIGH keeps only that band; "
            "--heterodyne HZ mixes with a carrier and low-passes at 5 kHz, as a bat "
            "detector does. Streamed: any length. The output is a 48 kHz (or the "
            "expanded rate, when usual) mono WAV or FLAC."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="audio file")
    parser.add_argument("--out", "-o", required=True, help="output file (.wav or .flac)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="playback speed, 0.05 (1/20) to 2 (default 1)")
    parser.add_argument("--band", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="band-pass to LOW..HIGH Hz")
    parser.add_argument("--heterodyne", type=float, metavar="HZ", help="carrier frequency")
    parser.add_argument("--channel", type=int, metavar="N",
                        help="channel N (from 1); default: the mean of all channels")
    parser.add_argument("--start", type=float, default=0.0, help="from this second (0)")
    parser.add_argument("--stop", type=float, help="to this second (default: the end)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from ..audio.listening import ListeningChain, ListeningSettings
    from ..audio.loading import stream_resampled
    from ..errors import AudioError, PannsError

    if args.channel is not None and args.channel < 1:
        raise PannsError(f"--channel {args.channel}: channels are counted from 1.")
    out = Path(args.out)
    if out.suffix.lower() not in (".wav", ".flac"):
        raise AudioError(f"{out}: write a .wav or .flac file.")
    if out.exists() and not args.force:
        raise AudioError(f"{out} exists; use --force to overwrite it.")
    settings = ListeningSettings(speed=args.speed,
                                 band=tuple(args.band) if args.band else None,
                                 carrier_hz=args.heterodyne)
    channel = None if args.channel is None else args.channel - 1
    _info, rate, chunks = stream_resampled(args.path, None, channel, args.start, args.stop)
    chain = ListeningChain(rate, settings)
    seconds = 0
    with sf.SoundFile(out, "w", samplerate=chain.out_rate, channels=1,
                      subtype="PCM_24" if out.suffix.lower() == ".flac" else "FLOAT") as f:
        for chunk in chunks:
            f.write(np.clip(chain.process(chunk), -1.0, 1.0))
        tail = chain.process(np.zeros(0, np.float32), last=True)
        f.write(np.clip(tail, -1.0, 1.0))
        seconds = f.frames / chain.out_rate
    print(f"panns-sed: wrote {out} ({seconds:.2f} s at {chain.out_rate} Hz)", file=sys.stderr)
    return 0
