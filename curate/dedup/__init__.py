"""dedup: exact and MinHash-LSH near-duplicate clusters (zh/en aware), a representative per cluster,
and decontamination against eval sets. Rows are kept: duplicates get ``drop_reason = "duplicate"``,
rows overlapping an eval item ``"contaminated"`` (with the eval id in ``meta["dedup"]``).
"""
from curate.dedup.options import DedupOptions
from curate.dedup.stage import find_clusters, run
from curate.stage import Stage

STAGE = Stage(
    name="dedup",
    Options=DedupOptions,
    run=run,
    # the compared text (``field``: prompt or response) and what picks a cluster's representative
    reads=("id", "prompt", "response", "source", "label_origin", "drop_reason"),
    writes=("dup_cluster", "is_duplicate", "drop_reason", "meta"),
    streamed=lambda options: (options.field,),  # read shard by shard (curate.dedup.texts), never held whole
    help="Cluster exact and near-duplicate rows (MinHash LSH + exact Jaccard), keep one representative per "
         "cluster, and mark rows that overlap eval sets (--against).",
)

__all__ = ["STAGE", "DedupOptions", "find_clusters", "run"]
