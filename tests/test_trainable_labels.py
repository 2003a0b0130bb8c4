"""Which labels a project trains: every label of an accepted, edited or added event,
in or out of the vocabulary; not a vocabulary label without such an event, nor one
that only rejected or proposed events carry."""

from __future__ import annotations

import pytest

from panns_core import events as ev
from panns_core.annotations.store import ProjectStore
from panns_core.data import resource_path
from panns_core.errors import TrainingError
from panns_core.training.data import POSITIVE_STATUSES, from_project, trainable_labels


@pytest.fixture
def store():
    store = ProjectStore()
    rec = store.add_recording(resource_path("demo.flac"), hash=False)
    store.ensure_labels(["Unused", "Dog", "Bird"])
    store.add_events(ev.make_events([
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.ACCEPTED, "source": "m"},
        {"onset": 2, "offset": 3, "label": "Meow", "status": ev.EDITED, "source": "m"},
        {"onset": 3, "offset": 4, "label": "Chirp", "status": ev.ADDED, "source": "human"},
        {"onset": 4, "offset": 5, "label": "Bird", "status": ev.REJECTED, "source": "m"},
        {"onset": 5, "offset": 6, "label": "Siren", "status": ev.PROPOSED, "source": "m"},
    ]), rec)
    yield store
    store.close()


def test_every_label_of_a_positive_event_is_trainable(store):
    labels = trainable_labels(store.events(), [e.name for e in store.labels()])
    assert labels == ["Dog", "Chirp", "Meow"]
    recordings, space = from_project(store)
    assert space == labels
    (rec,) = recordings
    assert sorted(space[int(c)] for c in rec.positives[:, 2]) == ["Chirp", "Dog", "Meow"]
    frame = store.events(statuses=POSITIVE_STATUSES)
    assert set(frame["label"]) == set(space)


def test_a_project_without_positive_events_says_what_to_do(store):
    frame = store.events()
    positive = frame[frame["status"].isin(POSITIVE_STATUSES)]["id"].tolist()
    from panns_core.annotations.store import DeleteEvents

    store.apply(DeleteEvents(positive))
    assert trainable_labels(store.events(), [e.name for e in store.labels()]) == []
    with pytest.raises(TrainingError, match="accept or correct some"):
        from_project(store)
