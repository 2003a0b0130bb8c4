"""Smoke run in a clean venv: every feature the README shows, after `pip install .` alone.

Run with the python of a venv that holds only ``torch`` and the project without extras
(``.ci/run`` makes one). Each step runs the installed console scripts as a user would and
fails on a non-zero exit or a traceback on stderr:

1. ``panns-sed models import`` a tiny checkpoint made here (TinySED, random weights);
2. ``panns-sed detect`` on generated recordings with it (exact, ``--fast`` and
   ``--precision int8``: ONNX Runtime's quantizer must come with the plain install), into
   one file and into a results folder; ``--ray`` (the cluster extra, not installed here)
   says in one line how to get it;
3. ``panns-sed evaluate`` those detections against the generated reference (a DCASE TSV
   with a file listed without events, as the DESED metadata has);
4. ``panns-sed train --base arch:TinySED`` on a generated project, a short budget;
5. ``panns-annotator`` starts offscreen on the demo and is still alive a few seconds later.

Everything lives in a temporary directory (``PANNS_ANNOTATOR_HOME`` points there).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
WINDOW_SECONDS = 8.0


def step(title: str) -> None:
    print(f"== {title}", flush=True)


def run(env: dict[str, str], *argv: str, timeout: float = 600) -> str:
    """Run an installed script; fail on a non-zero exit or any traceback."""
    command = [str(BIN / argv[0]), *argv[1:]]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    if done.returncode != 0 or "Traceback" in done.stderr:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"smoke: {' '.join(argv[:3])} failed (exit {done.returncode})")
    print(f"   ok in {seconds:.1f} s: {' '.join(argv[:2])}", flush=True)
    return done.stdout


def make_checkpoint(path: Path, labels: list[str]) -> Path:
    import torch

    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import architecture_spec, build_model

    torch.manual_seed(0)
    model = build_model("TinySED", len(labels))
    return save_checkpoint(path, model, architecture="TinySED",
                           feature_config=architecture_spec("TinySED").feature_config,
                           labels=labels)


def main() -> int:
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    with tempfile.TemporaryDirectory(prefix="panns-smoke-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "PANNS_ANNOTATOR_HOME": str(root / "home"),
               "QT_QPA_PLATFORM": "offscreen", "PYTHONWARNINGS": "ignore"}
        data = make_synthetic_dataset(root / "audio", n_recordings=4, duration=6.0,
                                      sample_rate=16000, events_per_recording=3)

        step("models import")
        checkpoint = make_checkpoint(root / "tiny.pth", data.labels)
        run(env, "panns-sed", "models", "import", str(checkpoint), "--name", "smoke-tiny")
        listed = run(env, "panns-sed", "models", "list")
        assert "smoke-tiny" in listed, listed

        step("detect")
        estimated = root / "estimated.tsv"
        run(env, "panns-sed", "detect", str(root / "audio"), "--model", "smoke-tiny",
            "--device", "cpu", "--threshold", "0.3", "--out", str(estimated), "--quiet")
        assert estimated.read_text().startswith("filename\t"), estimated.read_text()[:200]

        step("detect --fast (times and checks the int8 and bf16 candidates) and --precision int8")
        run(env, "panns-sed", "detect", str(root / "audio"), "--model", "smoke-tiny",
            "--device", "cpu", "--fast", "--out", str(root / "fast.tsv"), "--quiet")
        run(env, "panns-sed", "detect", str(root / "audio"), "--model", "smoke-tiny",
            "--device", "cpu", "--precision", "int8", "--out", str(root / "int8.tsv"), "--quiet")
        assert (root / "int8.tsv").read_text().startswith("filename\t")

        step("detect into a results folder; --ray without the cluster extra")
        results = root / "results"
        run(env, "panns-sed", "detect", str(root / "audio"), "--model", "smoke-tiny",
            "--out", f"{results}/", "--quiet")
        assert (results / "manifest.jsonl").is_file() and (results / "scores").is_dir()
        done = subprocess.run([str(BIN / "panns-sed"), "detect", str(root / "audio"), "--model",
                               "smoke-tiny", "--out", f"{results}/", "--ray"], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
        assert "panns-annotator[cluster]" in lines[0], lines

        step("evaluate")
        reference = data.write_dcase(root / "reference.tsv")
        with reference.open("a") as handle:  # a file listed without events (DESED style)
            handle.write("silent.wav\t\t\t\n")
        report = run(env, "panns-sed", "evaluate", "--reference", str(reference),
                     "--estimated", str(estimated))
        assert "event-based" in report and "segment-based" in report, report

        step("train --base arch:TinySED")
        project = write_project(data, root / "smoke.panns")
        run(env, "panns-sed", "train", "--project", str(project), "--base", "arch:TinySED",
            "--epochs", "2", "--time-budget", "60", "--batch-size", "4", "--clip-seconds",
            "2", "--run-dir", str(root / "run"), "--name", "smoke-ft")

        step("panns-annotator (offscreen)")
        window = subprocess.Popen([str(BIN / "panns-annotator"), "--demo"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(WINDOW_SECONDS)
        alive = window.poll() is None
        window.send_signal(signal.SIGTERM)
        try:
            _, err = window.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            window.kill()
            _, err = window.communicate()
        if not alive or "Traceback" in err:
            sys.stderr.write(err)
            raise SystemExit(f"smoke: the window {'died' if not alive else 'printed a traceback'}")
        print(f"   ok: alive after {WINDOW_SECONDS:.0f} s", flush=True)
    print("smoke: every step passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
