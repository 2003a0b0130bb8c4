"""Fine-tuning on a project's corrected events.

Submodules (torch is imported only by those that need it):

* :mod:`.run` - :func:`~.run.fine_tune`: project + base model -> registered model.
* :mod:`.loop` - the :class:`~.loop.Trainer` (strategies, loss, checkpoints, resume, DDP).
* :mod:`.data` - labelled recordings, targets, clips, split, balanced sampler.
* :mod:`.heads` - the new output layer over the project's labels.
* :mod:`.config` - :class:`~.config.TrainConfig`.
* :mod:`.progress` - the JSON-lines progress protocol.
* :mod:`.synthetic` - a generated strongly-labelled dataset for tests and benchmarks.
* :mod:`.tiny` - ``TinySED``, a narrow event detector for tests (registered on import).
"""

from . import tiny as _tiny  # noqa: F401  (cheap: registers the TinySED architecture)
