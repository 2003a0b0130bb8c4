"""``panns-sed index`` and ``panns-sed search`` as a user runs them: a real process killed
in the middle of indexing, the next run resuming, and the TSV that search writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from panns_core.cli import main
from panns_core.search.index import open_index

CORPUS = Path(os.environ.get("PANNS_SOUNDSCAPES", "/work/shared/corpus/soundscapes")) / "audio"
NAMES = [f"dev_{i:04d}.flac" for i in range(200, 230)]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="the soundscape corpus is not here"),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A TinySED with seeded weights (the index only needs a fixed network)."""
    import torch

    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import build_model

    torch.manual_seed(7)
    model = build_model("TinySED", classes_num=2).eval()
    path = tmp_path_factory.mktemp("search-model") / "tiny.pth"
    return save_checkpoint(path, model, architecture="TinySED",
                           feature_config=model.feature_config, labels=["a", "b"])  # fmt: skip


def _project(folder: Path) -> Path:
    project = folder / "p.panns"
    assert main(["project", "create", str(project)]) == 0
    assert main(["project", "add", str(project), *(str(CORPUS / n) for n in NAMES)]) == 0
    return project


def test_a_killed_indexing_run_resumes_and_ends_as_an_uninterrupted_one(
    tmp_path, checkpoint, capsys
):
    project = _project(tmp_path)
    command = [sys.executable, "-m", "panns_core", "index", "--project", str(project),
               "--model", str(checkpoint)]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shards = project.with_name("p.panns.search")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None:
        if sum(".part" not in p.name for p in shards.glob("*/shards/*.npz")) >= 3:
            break
        time.sleep(0.005)
    assert child.poll() is None, child.stderr.read().decode()
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = [p for p in shards.glob("*/shards/*.npz") if ".part" not in p.name]
    assert 3 <= len(done) < len(NAMES), "the run was not killed in the middle"
    for path in done:  # whatever a killed run left is whole
        with np.load(path) as data:
            assert data["vectors"].shape[1] == 128 and np.isfinite(data["vectors"]).all()

    capsys.readouterr()
    assert main(["index", "--project", str(project), "--model", str(checkpoint)]) == 0
    err = capsys.readouterr().err
    assert f"{len(NAMES) - len(done)} indexed now, {len(done)} already indexed" in err
    assert main(["index", "--project", str(project), "--model", str(checkpoint)]) == 0
    assert f"0 indexed now, {len(NAMES)} already indexed" in capsys.readouterr().err

    # the same as a run that was never interrupted
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    other = _project(fresh)
    assert main(["index", "--project", str(other), "--model", str(checkpoint)]) == 0
    folder_a = next(shards.glob("*/catalog.json")).parent
    folder_b = next(other.with_name("p.panns.search").glob("*/catalog.json")).parent
    cat_a = json.loads((folder_a / "catalog.json").read_text())
    cat_b = json.loads((folder_b / "catalog.json").read_text())
    assert [e["name"] for e in cat_a["entries"]] == NAMES
    assert [(e["sha256"], e["rows"]) for e in cat_a["entries"]] == [
        (e["sha256"], e["rows"]) for e in cat_b["entries"]]  # fmt: skip
    assert (folder_a / "vectors.f16").read_bytes() == (folder_b / "vectors.f16").read_bytes()


def test_search_writes_the_ranked_windows_as_tsv(tmp_path, soundscape_search, capsys):
    project, model = str(soundscape_search.project), str(soundscape_search.checkpoint)
    names = [e.name for e in open_index(soundscape_search.project,
                                        soundscape_search.model_id).entries]  # fmt: skip
    out = tmp_path / "hits.tsv"
    code = main(["search", "--project", project, "--model", model,
                 "--query", f"{names[0]}:1.0-2.5", "--top", "25", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    hits = pd.read_csv(out, sep="\t")
    assert list(hits.columns) == ["filename", "onset", "offset", "score"]
    assert len(hits) == 25
    assert hits["score"].is_monotonic_decreasing
    assert set(hits["filename"]) <= set(names)
    assert ((hits["offset"] > hits["onset"]) & (hits["offset"] - hits["onset"] <= 1.0)).all()
    first = hits[hits["filename"] == names[0]]
    assert not ((first["onset"] < 2.5) & (first["offset"] > 1.0)).any()  # not the query

    # two queries combine (a head on their windows): scores are probabilities
    code = main(["search", "--project", project, "--model", model, "--query",
                 f"{names[0]}:1.0-2.5", "--query", f"{names[3]}:4-6", "--out", str(out)])
    assert code == 0
    hits = pd.read_csv(out, sep="\t")
    assert len(hits) == 50 and hits["score"].between(0, 1).all()
    assert hits["score"].is_monotonic_decreasing

    capsys.readouterr()
    code = main(["search", "--project", project, "--model", model,
                 "--query", "nowhere.flac:1-2"])  # fmt: skip
    assert code == 1
    assert "not in the search index" in capsys.readouterr().err
