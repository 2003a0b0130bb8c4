"""The monkey at the keys (tests/gui/monkey.py) on fixed seeds: random sequences of
real user actions, with the project file checked against the window after each one
and a full undo back to the start. benchmarks/monkey.py runs it for an hour."""

from __future__ import annotations

import pytest

from .monkey import Monkey, install_model, recordings_for

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SEEDS = (1, 2, 3)
ACTIONS = 40


@pytest.mark.parametrize("seed", SEEDS)
def test_monkey(seed, make_main_window, sed_checkpoint, tmp_path):
    install_model(sed_checkpoint)
    recordings = recordings_for(tmp_path / "audio")

    def close(window) -> None:
        window.close()

    monkey = Monkey(seed, tmp_path, lambda project: make_main_window(project=project), close,
                    recordings)
    stats = monkey.run(ACTIONS)
    assert stats.actions == ACTIONS
    assert stats.undo_checks >= 1
