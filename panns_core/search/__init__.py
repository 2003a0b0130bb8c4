"""Search by example: an embedding index per project, queries, and the agile loop.

- :mod:`.windows`: segment embeddings pooled to ~1 s windows with a hop.
- :mod:`.shards`: one file per (recording content, model), written atomically.
- :mod:`.vectors`: the vector search (usearch: exact on small projects, HNSW at scale).
- :mod:`.index`: :class:`ProjectIndex`, beside the project file; built or extended by
  :func:`build_index` from the detection pass itself (no second pass over the audio).
- :mod:`.query`: queries (``RECORDING:ONSET-OFFSET``) -> ranked windows.
- :mod:`.agile`: a linear head on the cached embeddings, re-ranking, uncertainty order,
  and registering the head as a detection model.

Never imports Qt; torch only inside the functions that run a model or train the head.
"""

from .index import ProjectIndex, build_index, index_dir
from .query import Hit, Query, parse_query, search

__all__ = ["Hit", "ProjectIndex", "Query", "build_index", "index_dir", "parse_query", "search"]
