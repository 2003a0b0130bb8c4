"""panns_core: the engine behind the PANNs annotator and the ``panns-sed`` command line.

Everything that is not GUI lives here: audio I/O, models, checkpoints, inference,
post-processing, annotations and their formats, the project store, training and
evaluation. This package never imports Qt, and importing it is cheap: heavy modules
(torch) are imported only by the submodules that need them.
"""

__version__ = "0.1.0"
