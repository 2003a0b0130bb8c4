"""The GUI tests' detector: a Cnn6_DecisionLevelMax checkpoint with seeded weights.

Model weights cannot be downloaded in tests; this one is deterministic and small (the
smallest SED architecture of the registry). Used by the ``sed_checkpoint`` fixture and
by benchmarks/monkey.py.
"""

from __future__ import annotations

from pathlib import Path

from panns_core.data import resource_path


def write_sed_checkpoint(path: Path) -> Path:
    """Write the checkpoint (our format) to ``path``; returns the path."""
    import torch

    from panns_core.audio import load_audio
    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.labels import audioset_labels
    from panns_core.models import FEATURES_32K, build_model

    torch.manual_seed(20240601)
    model = build_model("Cnn6_DecisionLevelMax").eval()
    # Centre each class's logit on the demo's mean segment embedding, so probabilities
    # rise and fall over time instead of sitting near a constant (still deterministic).
    x, _ = load_audio(resource_path("demo.flac"), sample_rate=32000)
    with torch.no_grad():
        mean = model(torch.from_numpy(x)[None])["segment_embedding"][0].mean(0)
        model.fc_audioset.weight.mul_(4.0)
        model.fc_audioset.bias.copy_(-(model.fc_audioset.weight @ mean))
    return save_checkpoint(path, model, architecture="Cnn6_DecisionLevelMax",
                           feature_config=FEATURES_32K, labels=audioset_labels().names)
