"""Fine-tuning on a project's corrected events.

Submodules (torch is imported only by those that need it):

* :mod:`.run` - :func:`~.run.fine_tune`: project + base model -> registered model.
* :mod:`.trainer` - the :class:`~.trainer.Trainer`: the fit loop, read top to bottom.
* :mod:`.state` - :class:`~.state.FitState` (position, best so far), resume, checkpoints.
* :mod:`.strategies` - what head / partial / full train; the head-only embedding inputs.
* :mod:`.steps` - one step's seeded inputs, augmentation, loss and learning rate.
* :mod:`.validation` - the validation pass and the best-epoch rule (segment mAP).
* :mod:`.calibration` - thresholds and median filters tuned on validation, shipped
  with the fine-tuned model.
* :mod:`.features` - log-mel computed once; the network run from it.
* :mod:`.distributed` - DDP: process group, device per rank, agreement.
* :mod:`.embeddings` - the cached per-recording embedding pass (head-only strategy).
* :mod:`.data` - labelled recordings (strong events, clip tags), targets, clips,
  split, balanced sampler.
* :mod:`.heads` - the new output layer over the project's labels.
* :mod:`.config` - :class:`~.config.TrainConfig`.
* :mod:`.progress` - the JSON-lines progress protocol.
* :mod:`.synthetic` - a generated strongly-labelled dataset for tests and benchmarks.
* :mod:`.tiny` - ``TinySED``, a narrow event detector for tests (registered on import).
"""

from . import tiny as _tiny  # noqa: F401  (cheap: registers the TinySED architecture)
