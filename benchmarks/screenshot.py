"""Take a screenshot of the real annotator window with detections shown.

    xvfb-run -a python benchmarks/screenshot.py [--out docs/screenshot.png]

Opens the demo recording in a fresh project (a temporary PANNS_ANNOTATOR_HOME unless
--home is given) and runs detection with the default installed model. When none is
installed (this machine cannot download the released weights), it builds one the way a
user would after correcting the demo: a Cnn14_DecisionLevelMax with seeded, untrained
convolutions whose output layer is fitted to the demo's known events
(``panns_core/data/make_demo.py``). A few proposals are then accepted, edited and rejected
and one event is added by hand, so every provenance style is visible.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fitted_checkpoint(folder: Path, demo: Path, demo_events) -> Path:
    """A Cnn14_DecisionLevelMax with seeded (untrained) convolutions whose output layer
    is fitted to the demo's own annotations: the correct -> fine-tune -> detect loop in
    miniature, for a screenshot on a machine that cannot download the released weights.
    """
    import numpy as np
    import torch

    from panns_core.audio import load_audio
    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.labels import audioset_labels
    from panns_core.models import FEATURES_32K, build_model

    torch.manual_seed(20240601)
    model = build_model("Cnn14_DecisionLevelMax").eval()
    names = audioset_labels().names
    x, _ = load_audio(demo, sample_rate=32000)
    with torch.inference_mode():
        emb = model(torch.from_numpy(x)[None])["segment_embedding"][0]  # (S, D)
    seg = model.segment_samples / 32000
    centres = (np.arange(emb.shape[0]) + 0.5) * seg
    classes = sorted({label for _, _, label in demo_events})
    target = np.zeros((emb.shape[0], len(classes)), np.float32)
    for onset, offset, label in demo_events:
        hit = (centres >= onset - seg / 2) & (centres <= offset + seg / 2)
        target[hit, classes.index(label)] = 1.0
    head = torch.nn.Linear(emb.shape[1], len(classes))
    features = emb.clone()
    scale = features.std().clamp_min(1e-6)
    optimiser = torch.optim.Adam(head.parameters(), lr=0.01)
    y = torch.from_numpy(target)
    for _ in range(400):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(features / scale), y)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        model.fc_audioset.weight.zero_()
        model.fc_audioset.bias.fill_(-8.0)  # classes never annotated stay silent
        for j, label in enumerate(classes):
            k = names.index(label)
            model.fc_audioset.weight[k] = head.weight[j] / scale
            model.fc_audioset.bias[k] = head.bias[j]
    return save_checkpoint(folder / "demo-fitted-cnn14-sed.pth", model,
                           architecture="Cnn14_DecisionLevelMax", feature_config=FEATURES_32K,
                           labels=names, extra={"note": "output layer fitted to the demo"})


def wait(app, condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--home", help="PANNS_ANNOTATOR_HOME to use (default: a temp dir)")
    parser.add_argument("--size", default="1600x940")
    args = parser.parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix="panns-shot-"))
    os.environ["PANNS_ANNOTATOR_HOME"] = str(home)

    from PySide6.QtWidgets import QApplication

    from app.main import apply_style

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    from app.main_window import MainWindow
    from panns_core import events as ev
    from panns_core.data import resource_path
    from panns_core.hub.installed import get_registry

    sys.path.insert(0, str(ROOT / "panns_core" / "data"))
    from make_demo import DEMO_EVENTS

    width, height = (int(v) for v in args.size.split("x"))
    window = MainWindow(project=home / "demo.panns")
    window.quiet_errors = True
    window.resize(width, height)
    window.show()
    registry = get_registry()
    fitted = not registry.list_models()
    if fitted:
        path = fitted_checkpoint(home, resource_path("demo.flac"), DEMO_EVENTS)
        registry.import_checkpoint(path, "CNN14 SED (demo-fitted)")
    window.panels["detection"].refresh_models()
    window.open_files([resource_path("demo.flac")])
    doc = window.document
    colours = {"Bird vocalization, bird call, bird song": "#45c46b", "Bark": "#ff9f40",
               "Speech": "#4e9bff", "Knock": "#d0b6ff"}
    for i, (label, colour) in enumerate(colours.items(), start=1):
        doc.add_label(label, colour=colour, hotkey=str(i))

    panel = window.panels["detection"]
    panel.threshold_spin.setValue(0.5)
    panel.median_spin.setValue(0.64)
    panel.run()
    if not wait(app, lambda: not panel.running, 300):
        print("detection did not finish", file=sys.stderr)
        return 1
    # a user's first corrections: every provenance style is visible
    from panns_core.annotations.store import UpdateEvents

    frame = doc.annotations.sort_values("onset")
    ids = frame["id"].astype(int).tolist()
    plan = {0: ev.ACCEPTED, 1: ev.ACCEPTED, 3: ev.REJECTED}
    changes = {ids[i]: {"status": s} for i, s in plan.items() if i < len(ids)}
    if len(ids) > 4:
        row = frame.iloc[4]
        changes[ids[4]] = {"status": ev.EDITED, "offset": float(row["offset"]) + 0.2}
    doc.apply(UpdateEvents.each(changes), "demo corrections")
    doc.add_event(10.6, 11.39, "Knock", select=False)
    doc.selection = {ids[min(5, len(ids) - 1)]}
    doc.cursor = 8.3
    window.curves.choose_classes(None)
    wait(app, lambda: len(window.spectrogram.visible_tiles()) >= 2, 120)
    from PySide6.QtGui import QCursor

    QCursor.setPos(window.mapToGlobal(window.rect().center()))  # no stray tooltips
    wait(app, lambda: False, 1.0)  # let the last paints land
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    print(out)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
