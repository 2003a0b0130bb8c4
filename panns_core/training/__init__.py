"""Fine-tuning on a project's corrected events.

Submodules (each imports torch only when it needs it):

* :mod:`.synthetic` - a generated strongly-labelled dataset for tests and benchmarks.
"""
