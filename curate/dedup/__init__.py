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
    # read shard by shard, never held whole: the compared texts (curate.dedup.texts), and of the answers whether
    # each row has one (the representative rule's "response")
    streamed=lambda options: tuple(dict.fromkeys((options.field, "response"))),
    meta_entry_only=True,  # its clusters and eval overlaps, through ctx.add_meta
    help="Cluster exact and near-duplicate rows (MinHash LSH + exact Jaccard), keep one representative per "
         "cluster, and mark rows that overlap eval sets (--against).",
)

__all__ = ["STAGE", "DedupOptions", "find_clusters", "run"]
