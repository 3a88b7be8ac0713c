"""The dedup stage: exact duplicates, MinHash-LSH near-duplicates verified by exact Jaccard, clusters,
representatives and decontamination. Every row is kept; rejected rows get a drop_reason.

1. per shard (signatures.compute, on the engine: local threads or Dask workers): each text's exact key
   (its tokens, so case, width, punctuation and spacing do not count) and its LSH band keys;
2. rows with the same exact key are one group; the first row of each group goes on to LSH, whose equal
   band keys give candidate pairs (lsh);
3. candidate pairs whose exact Jaccard reaches the threshold (jaccard, on freshly shingled texts of the
   rows involved) are joined with the exact groups (clusters, union-find);
4. each cluster's representative follows the policy (representative); the others are duplicates;
5. rows overlapping an eval item (decontaminate) are "contaminated", before duplicates are marked, so a
   contaminated row never represents a cluster.
"""
from __future__ import annotations

import json
import time

import numpy as np
import polars as pl

from curate import records
from curate.dedup import clusters, decontaminate, lsh, representative, signatures
from curate.dedup.jaccard import jaccard
from curate.dedup.options import DedupOptions
from curate.dedup.shingles import Shingling, shingle
from curate.dedup.texts import FrameTexts, ShardTexts, Texts
from curate.errors import UsageError
from curate.stage import StageContext

STAGE_NAME = "dedup"


def _exact_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row index of each distinct key, for every row the index of its distinct key)."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # number distinct texts in input order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()]


# Rows shingled at once to verify candidate pairs: whole candidate clusters (connected by candidate pairs) go
# together, so each row is shingled once. All 445k rows of 1M rows' pairs at once held 1.2 GB of shingles.
VERIFY_ROWS = 32_768
# A cluster larger than this (on 10M rows, spliced prompts chained two clusters of ~900k rows) is cut into
# chunks of that many rows, in an order that keeps its pairs close (_pair_local_order), and verified a pair of
# chunks at a time: its rows are shingled a few times over, in bounded memory.
GIANT_CHUNK = 2 * VERIFY_ROWS
# Rows whose texts are read at once, for a run of consecutive blocks: one pass over a run's shards per round
# (texts read from shards, ShardTexts), about 180 MB of prompts.
ROUND_ROWS = 16 * VERIFY_ROWS
# Distinct rows shingled at once to compare with eval sets (ascending rows: a slice reads a shard or two).
DECONTAMINATE_ROWS = 100_000


def _rounds(blocks: list[tuple[int, int]], size: int) -> list[list[tuple[int, int]]]:
    """Consecutive blocks grouped while they hold at most ``size`` rows together (a larger block goes alone)."""
    rounds: list[list[tuple[int, int]]] = []
    for r0, r1 in blocks:
        if rounds and r1 - rounds[-1][0][0] <= size:
            rounds[-1].append((r0, r1))
        else:
            rounds.append([(r0, r1)])
    return rounds


def _pair_local_order(members: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Each member's position (members ascending, pairs among them) in reverse Cuthill-McKee order, which puts
    rows joined by a pair near each other. Cut in chunks of 65k rows in that order, the 928k-row cluster of a
    10M-row run left 33 pairs of chunks to verify (1.9M rows shingled, at most 117k at once); in row order, 120
    (5.2M rows shingled)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import reverse_cuthill_mckee  # loaded only for a giant cluster: scipy takes a moment

    at = np.searchsorted(members, pairs).astype(np.int32)
    m = len(members)
    ends = np.concatenate([at, at[:, ::-1]])  # both directions: the graph is symmetric
    del at
    graph = coo_matrix((np.ones(len(ends), dtype=np.int8), (ends[:, 0], ends[:, 1])), shape=(m, m)).tocsr()
    del ends
    order = reverse_cuthill_mckee(graph, symmetric_mode=True)
    position = np.empty(m, dtype=np.int64)
    position[order] = np.arange(m)
    return position


def _giant_groups(which: np.ndarray, members: np.ndarray, local: np.ndarray, chunk: np.ndarray) -> list[np.ndarray]:
    """A giant cluster's pairs (``which``, indices into ``local``) grouped by the pair of chunks their rows fall in,
    its ``members`` cut into chunks of GIANT_CHUNK rows in pair-local order (``chunk`` gets each member's chunk).
    A function, so its per-pair temporaries are gone before the groups are verified."""
    chunk[members] = _pair_local_order(members, local[which]) // GIANT_CHUNK
    chunks = -(-len(members) // GIANT_CHUNK)
    a, b = chunk[local[which, 0]], chunk[local[which, 1]]
    key = np.minimum(a, b) * chunks + np.maximum(a, b)
    del a, b
    order = np.argsort(key, kind="stable")
    key = key[order]
    return np.split(which[order], np.flatnonzero(np.diff(key)) + 1)


def _similarities(texts: Texts, distinct_rows: np.ndarray, candidates: np.ndarray, spec: Shingling) -> np.ndarray:
    """Exact Jaccard of candidate pairs (indices into ``distinct_rows``, ascending rows of ``texts``), shingling
    only the rows involved, block by block; the texts of a round of blocks are read at once. Pair indices are
    int32 here: at 10M rows 31M candidate pairs make each per-pair array a quarter of a gigabyte at 64 bits."""
    out = np.zeros(len(candidates))
    if len(candidates) == 0:
        return out
    involved = np.zeros(len(distinct_rows), dtype=bool)  # rows in pairs, numbered in order
    involved[candidates.ravel()] = True
    rows = distinct_rows[involved]
    local = (np.cumsum(involved, dtype=np.int32) - 1)[candidates]
    del involved
    root = clusters.components(len(rows), local).astype(np.int32)  # each involved row's candidate cluster
    row_order = np.argsort(root, kind="stable")
    pair_order = np.argsort(root[local[:, 0]], kind="stable").astype(np.int32)
    row_roots, pair_roots = root[row_order], root[local[pair_order, 0]]
    del root
    starts = np.flatnonzero(np.r_[True, row_roots[1:] != row_roots[:-1]])  # where each cluster starts
    block_starts = starts[np.r_[True, np.diff(starts // VERIFY_ROWS) > 0]]
    blocks = list(zip(block_starts.tolist(), [*block_starts[1:].tolist(), len(rows)]))
    chunk = np.zeros(len(rows), dtype=np.int64)  # a giant cluster's rows: their chunk
    for round_blocks in _rounds(blocks, ROUND_ROWS):
        needed = np.sort(rows[row_order[round_blocks[0][0]:round_blocks[-1][1]]])
        round_texts = None  # the last round's texts go before this round's are read
        round_texts = texts.gather(needed)
        for r0, r1 in round_blocks:
            p0 = np.searchsorted(pair_roots, row_roots[r0], side="left")
            p1 = np.searchsorted(pair_roots, row_roots[r1 - 1], side="right")
            which = pair_order[p0:p1]
            if r1 - r0 <= GIANT_CHUNK:
                groups = [which]
            else:
                groups = _giant_groups(which, np.sort(row_order[r0:r1]), local, chunk)
            for part in groups:
                part_rows, at = np.unique(local[part], return_inverse=True)
                part_texts = round_texts.gather(np.searchsorted(needed, rows[part_rows]))
                out[part] = jaccard(shingle(part_texts, spec), at.reshape(-1, 2))
            del groups  # a giant cluster's groups go before the next block's are built
    return out


def _keys_of(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The band keys of ``rows`` (ascending), moved in place into the first columns, band by band: no second copy
    of every key. (A function, so no loop variable keeps a view of the whole array alive afterwards.)"""
    for band in keys:
        band[:len(rows)] = band[rows]
    return keys[:, :len(rows)]


def find_clusters(texts: pl.Series | Texts, opts: DedupOptions, ctx: StageContext | None = None) -> dict:
    """Cluster root per row plus what the steps found (used by run and by the benchmark)."""
    texts = FrameTexts(texts) if isinstance(texts, pl.Series) else texts
    n = len(texts)
    spec = opts.shingling()
    bands, rows = opts.lsh_shape()
    params = signatures.Params(shingling=spec, bands=bands, rows=rows)

    if ctx is not None:
        with ctx.progress(n, "dedup signatures") as bar:
            facts = signatures.compute(texts, params, opts.workers, opts.shard_rows, bar.advance,
                                       engine=ctx.engine, work_dir=ctx.work_dir)
    else:
        facts = signatures.compute(texts, params, opts.workers, opts.shard_rows)
    # rows with nothing to compare (no response yet, say) are their own cluster, never a duplicate
    present = np.flatnonzero(facts.present)
    # one row per distinct text goes on to LSH; exact copies join their first row's cluster
    first, unique_of_present = _exact_groups(facts.exact[present])
    distinct_rows = present[first]  # the row of each distinct text (ascending)
    keys, facts.keys = _keys_of(facts.keys, distinct_rows), None
    candidates = lsh.candidate_pairs(keys)
    del keys  # 1.3 GB at 10M rows
    verified = candidates[_similarities(texts, distinct_rows, candidates, spec) >= opts.threshold - 1e-12]
    unique_roots = clusters.components(len(first), verified)

    # back to rows: a row's root is the first row holding its distinct text's root
    roots = np.arange(n, dtype=np.int64)
    roots[present] = present[first[unique_roots[unique_of_present]]]
    unique_of_row = np.full(n, -1, dtype=np.int64)  # index into `distinct`, -1 = empty text
    unique_of_row[present] = unique_of_present
    return {"roots": roots, "distinct_rows": distinct_rows, "unique_of_row": unique_of_row, "chars": facts.chars,
            "bands": bands, "rows": rows, "unique_texts": len(first), "candidate_pairs": len(candidates),
            "verified_pairs": len(verified), "shingling": spec, "empty": n - len(present)}


def _decontaminate(df: pl.DataFrame, texts: Texts, found: dict, opts: DedupOptions, ctx: StageContext) -> pl.DataFrame:
    evals = decontaminate.read_eval_sets(list(opts.against), opts.against_field)
    ev_sh = decontaminate.eval_shingles(evals, found["shingling"])
    distinct = found["distinct_rows"]
    best, which = np.zeros(len(distinct)), np.full(len(distinct), -1, dtype=np.int64)
    for start in range(0, len(distinct), DECONTAMINATE_ROWS):
        rows = distinct[start:start + DECONTAMINATE_ROWS]
        train_sh = shingle(texts.gather(rows), found["shingling"])
        best[start:start + len(rows)], which[start:start + len(rows)] = decontaminate.best_overlap(train_sh, ev_sh)
    idx = found["unique_of_row"]  # -1 (an empty text) picks the appended "no overlap" entry
    row_best, row_which = np.append(best, 0.0)[idx], np.append(which, -1)[idx]
    hit = row_best >= opts.contamination_threshold - 1e-12
    ctx.stats["eval_items"] = len(evals.ids)
    ctx.stats["eval_columns"] = evals.columns
    ctx.stats["contaminated"] = int(hit.sum())
    at = np.flatnonzero(hit)
    entries = pl.repeat(None, df.height, dtype=pl.Utf8, eager=True)
    if len(at):
        entries = entries.scatter(at, [json.dumps({"contaminated_by": evals.ids[int(row_which[i])],
                                                   "eval_overlap": round(float(row_best[i]), 4)}, ensure_ascii=False)
                                       for i in at])
    df = ctx.add_meta(df, STAGE_NAME, entries)
    return records.mark_dropped(df, pl.Series(hit), "contaminated")


def _texts(df: pl.DataFrame, field: str, ctx: StageContext) -> Texts:
    """The compared texts: the frame's column, or the input shards' when the runner streams it (ctx.shards)."""
    if field in df.columns and df.schema[field] == pl.Utf8:
        return FrameTexts(df[field])
    if field not in df.columns and ctx.shards and records.SCHEMA.get(field) == pl.Utf8:
        return ShardTexts(ctx.shards, field)
    raise UsageError(f"dedup: field {field!r} is not a text column of the records")


def _cluster_meta(size: np.ndarray, is_dup: np.ndarray, exact_rep: np.ndarray) -> pl.Series:
    """Each clustered row's ``meta.dedup`` entry as JSON text, built column-wise (null for a row alone)."""
    cols = pl.DataFrame({"size": size, "dup": is_dup, "exact": exact_rep})
    match = pl.when(pl.col("exact")).then(pl.lit('"exact"')).otherwise(pl.lit('"near"'))
    representative = pl.when(pl.col("dup")).then(pl.lit("false")).otherwise(pl.lit("true"))
    entry = records.concat_text('{"cluster_size": ', pl.col("size"), ', "match": ', match,
                                ', "representative": ', representative, "}")
    return cols.select(pl.when(pl.col("size") > 1).then(entry).alias("entry"))["entry"]


def run(df: pl.DataFrame, opts: DedupOptions, ctx: StageContext) -> pl.DataFrame:
    started = time.perf_counter()
    if df.height == 0:
        return df
    texts = _texts(df, opts.field, ctx)
    found = find_clusters(texts, opts, ctx)
    if opts.against:
        df = _decontaminate(df, texts, found, opts, ctx)

    roots = found["roots"]
    answered = ctx.derived(df, [records.ANSWERED_FACT]).to_series() if "response" in opts.prefer else None
    rep = representative.representatives(df, roots, found["chars"], answered, opts.prefer, opts.source_priority)
    row = np.arange(df.height)
    size = np.bincount(roots, minlength=df.height)[roots]
    is_dup = rep != row
    exact_rep = found["unique_of_row"] == found["unique_of_row"][rep]  # empty rows are never in a cluster
    df = df.with_columns(df["id"].gather(rep).alias("dup_cluster"), pl.Series("is_duplicate", is_dup))
    df = ctx.add_meta(df, STAGE_NAME, _cluster_meta(size, is_dup, exact_rep))
    df = records.mark_dropped(df, pl.Series(is_dup), "duplicate")

    seconds = time.perf_counter() - started
    ctx.stats.update({
        "rows": df.height, "unique_texts": found["unique_texts"], "empty_texts": found["empty"],
        "clusters": int(len(np.unique(roots))),
        "duplicates": int(is_dup.sum()), "exact_duplicates": int(df.height - found["empty"] - found["unique_texts"]),
        "candidate_pairs": found["candidate_pairs"], "verified_pairs": found["verified_pairs"],
        "bands": found["bands"], "rows_per_band": found["rows"], "word_ngram": found["shingling"].word_n,
        "char_ngram": found["shingling"].char_n, "weighted_words": found["shingling"].weighted,
        "seconds": round(seconds, 3),
        "rows_per_second": round(df.height / seconds) if seconds else None,
    })
    ctx.log(f"dedup: {df.height} rows, {int(is_dup.sum())} duplicates in {len(np.unique(roots))} clusters "
            f"({found['bands']} bands x {found['rows']} rows, {found['verified_pairs']} of "
            f"{found['candidate_pairs']} candidate pairs verified)")
    return df
