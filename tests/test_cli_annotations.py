"""``panns-sed convert`` and ``panns-sed project`` on real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from panns_core.annotations.formats import read_annotations
from panns_core.annotations.store import ProjectStore
from panns_core.cli import main
from panns_core.events import ADDED

INTEROP = Path(__file__).parent / "fixtures" / "interop"
RAVEN = INTEROP / "raven" / "Recording_1_Segment_05.Table.1.selections.txt"
SPECTRAL = INTEROP / "audacity-spectral" / "spinetail.txt"


def wav(path: Path, seconds: float, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, rng.uniform(-0.1, 0.1, int(seconds * 8000)).astype(np.float32), 8000)
    return path


def test_convert_between_formats_keeps_events(tmp_path: Path, capsys) -> None:
    source = tmp_path / "spinetail.txt"
    shutil.copy(SPECTRAL, source)
    assert main(["convert", str(source), "--to", "raven"]) == 0
    raven = tmp_path / "spinetail.selections.txt"
    assert "18 events" in capsys.readouterr().out
    original, converted = read_annotations(source), read_annotations(raven)
    for column in ("onset", "offset", "label", "low_freq", "high_freq"):
        assert list(converted[column]) == list(original[column])
    out = tmp_path / "x.json"
    assert main(["convert", str(RAVEN), "--to", "json", "--out", str(out),
                 "--recording", "seg5.wav"]) == 0
    events = read_annotations(out)
    assert len(events) == 205 and set(events["recording"]) == {"seg5.wav"}
    assert main(["convert", str(source), "--to", "audacity"]) == 1  # would overwrite input
    assert "overwrite" in capsys.readouterr().err
    broken = tmp_path / "broken.txt"
    broken.write_text("0\t1\tok\n1\tx\tbad\n")
    assert main(["convert", str(broken), "--to", "dcase"]) == 1
    err = capsys.readouterr().err
    assert "broken.txt, line 2" in err and "Traceback" not in err


def test_project_create_add_import_export_info(tmp_path: Path, capsys) -> None:
    project = tmp_path / "birds.panns"
    audio = tmp_path / "audio"
    seg5 = wav(audio / "Recording_1_Segment_05.wav", 301.0, 1)
    spin = wav(audio / "spinetail.wav", 20.0, 2)
    assert main(["project", "create", str(project)]) == 0
    assert main(["project", "create", str(project)]) == 1  # exists
    assert main(["project", "add", str(project), str(audio)]) == 0
    # Raven table and Audacity labels: recording matched from the annotation file name
    assert main(["project", "import", str(project), str(RAVEN), str(SPECTRAL)]) == 0
    out = capsys.readouterr().out
    assert "205 events" in out and "18 events" in out
    with ProjectStore(project, create=False) as store:
        assert len(store.events(seg5)) == 205 and len(store.events(spin)) == 18
        assert set(store.events(spin)["status"]) == {ADDED}
        assert {e.name for e in store.labels()} >= {"WOTH", "EATO", "SP", "CRER"}
    # ambiguous: an Audacity file whose name matches no recording
    other = tmp_path / "unnamed.txt"
    shutil.copy(SPECTRAL, other)
    assert main(["project", "import", str(project), str(other)]) == 1
    assert "--recording" in capsys.readouterr().err
    # the same 18 labels again: the project holds them already, so nothing is duplicated
    assert main(["project", "import", str(project), str(other), "--recording", "spinetail"]) == 0
    assert "0 events" in (said := capsys.readouterr().out) and "18 already" in said
    with ProjectStore(project, create=False) as store:
        assert len(store.events(spin)) == 18

    # export: one DCASE file for the whole project, one Audacity file per recording
    dcase = tmp_path / "all.tsv"
    assert main(["project", "export", str(project), "--format", "dcase", "--out", str(dcase)]) == 0
    events = read_annotations(dcase)
    assert len(events) == 205 + 18
    assert set(events["recording"]) == {"Recording_1_Segment_05.wav", "spinetail.wav"}
    folder = tmp_path / "labels"
    folder.mkdir()
    assert main(["project", "export", str(project), "--format", "audacity",
                 "--out", str(folder)]) == 0
    back = read_annotations(folder / "spinetail.txt")
    original = read_annotations(SPECTRAL)
    assert len(back) == 18
    assert sorted(back["onset"]) == sorted(original["onset"])
    assert main(["project", "export", str(project), "--format", "audacity",
                 "--out", str(tmp_path / "one.txt")]) == 1  # two recordings, one file
    assert main(["project", "export", str(project), "--format", "sv", "--recording",
                 "spinetail", "--out", str(tmp_path / "one.csv")]) == 0
    assert len(read_annotations(tmp_path / "one.csv")) == 18

    capsys.readouterr()
    assert main(["project", "info", str(project)]) == 0
    info = capsys.readouterr().out
    assert "recordings\t2 (0 missing)" in info and "events\t223 (added 223)" in info


def test_project_relocate_finds_moved_audio(tmp_path: Path, capsys) -> None:
    project = tmp_path / "p.panns"
    first = wav(tmp_path / "old" / "a.wav", 1.0, 3)
    main(["project", "create", str(project)])
    main(["project", "add", str(project), str(first)])
    moved = tmp_path / "new" / "sub" / "renamed.wav"
    moved.parent.mkdir(parents=True)
    shutil.move(first, moved)
    capsys.readouterr()
    assert main(["project", "info", str(project)]) == 0
    assert "MISSING" in capsys.readouterr().out
    assert main(["project", "relocate", str(project), str(tmp_path / "new")]) == 0
    assert "still missing 0" in capsys.readouterr().out
    with ProjectStore(project, create=False) as store:
        assert store.recordings()[0].path == moved


def test_project_commands_on_a_missing_project_fail_cleanly(tmp_path: Path, capsys) -> None:
    assert main(["project", "info", str(tmp_path / "none.panns")]) == 1
    assert "project create" in capsys.readouterr().err
    assert not (tmp_path / "none.panns").exists()


@pytest.mark.parametrize("fmt", ["dcase", "raven", "label_studio"])
def test_export_then_import_round_trips_through_a_project(tmp_path: Path, fmt: str) -> None:
    project = tmp_path / "p.panns"
    seg = wav(tmp_path / "Recording_1_Segment_05.wav", 301.0, 4)
    main(["project", "create", str(project)])
    main(["project", "add", str(project), str(seg)])
    main(["project", "import", str(project), str(RAVEN)])
    out = tmp_path / f"export{'.json' if fmt == 'label_studio' else '.txt'}"
    assert main(["project", "export", str(project), "--format", fmt, "--out", str(out)]) == 0
    second = tmp_path / "q.panns"
    main(["project", "create", str(second)])
    main(["project", "add", str(second), str(seg)])
    assert main(["project", "import", str(second), str(out), "--format", fmt]) == 0
    with ProjectStore(project) as a, ProjectStore(second) as b:
        left, right = a.events(), b.events()
    assert list(left["label"]) == list(right["label"])
    for column in ("onset", "offset"):  # written to the nanosecond (the file had 1e-15 noise)
        np.testing.assert_allclose(left[column], right[column], rtol=0, atol=1e-9)
