"""Options of the dedup stage (also its CLI flags and pipeline YAML keys)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from curate.config import InputPath
from curate.dedup.representative import DEFAULT_PREFER, Criterion
from curate.dedup.shingles import Shingling
from curate.stage import StageOptions

# The best pair F1 of `benchmarks/dedup_bench.py --sweep` on short safety prompts (docs/benchmarks-notes.md).
DEFAULT_WORD_NGRAM = 2
DEFAULT_CHAR_NGRAM = 2
MAX_WEIGHTED_WORD_NGRAM = 8


class DedupOptions(StageOptions):
    field: str = Field("prompt", description="Text column compared (prompt or response).")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity of shingle sets at or above which "
                             "two rows are near-duplicates (checked exactly on every LSH candidate pair).")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations available to the LSH bands "
                          "(bands x rows <= num_perm).")
    ngram: int | None = Field(None, ge=1, le=32, description="Shingle size for every row; default: per script, "
                              f"word {DEFAULT_WORD_NGRAM}-grams for space-delimited text and character "
                              f"{DEFAULT_CHAR_NGRAM}-grams for Chinese/Japanese/Korean.")
    word_ngram: int = Field(DEFAULT_WORD_NGRAM, ge=1, le=32, description="Word n-gram size for space-delimited text.")
    weighted_words: bool = Field(True, description="Word rows get every word k-gram for k = 1..n, a k-gram "
                                 "counted k times, instead of n-grams only: single words count as well as their "
                                 "order, so a one-word edit of a 16-word prompt still reaches 0.8 while the same "
                                 "words in another order stay below it up to ~25 words.")
    char_ngram: int = Field(DEFAULT_CHAR_NGRAM, ge=1, le=32, description="Character n-gram size for CJK text.")
    bands: int | None = Field(None, ge=1, description="LSH bands (default: derived from threshold and num_perm).")
    rows: int | None = Field(None, ge=1, description="Rows per LSH band (default: derived with --bands).")
    false_negative_weight: float = Field(0.95, gt=0, lt=1, description="Weight of missed pairs against extra "
                                         "candidates when deriving bands x rows; candidates are verified "
                                         "exactly, so a miss costs more than a check.")
    against: list[InputPath] = Field(default_factory=list, description="Eval sets to decontaminate against "
                                     "(.jsonl/.jsonl.gz/.json/.csv/.parquet or a parquet folder).")
    against_field: str = Field("prompt", description="Text column of the --against files (a file without it is "
                               "read from the first of prompt, Behavior, forbidden_prompt, goal, question, "
                               "instruction, text it has).")
    contamination_threshold: float = Field(0.8, gt=0, le=1, description="Shingle overlap coefficient with an eval "
                                           "item at or above which a row is contaminated.")
    prefer: list[Criterion] = Field(default_factory=lambda: list(DEFAULT_PREFER), description="Representative "
                                    "policy, in order: response, human, source, longest; ties go to the smallest id.")
    source_priority: list[str] = Field(default_factory=list, description="Sources in order of preference for "
                                       "representatives (criterion 'source').")
    workers: int = Field(0, ge=0, le=256, description="Threads computing signatures, one shard each at a "
                         "time (0: one per CPU core). Results do not depend on it.")
    shard_rows: int = Field(100_000, ge=1000, description="Rows per signature shard (bounds memory per process).")

    @model_validator(mode="after")
    def _bands_rows(self) -> "DedupOptions":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then both are derived from the threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        if self.weighted_words and self.shingling().word_n > MAX_WEIGHTED_WORD_NGRAM:
            raise ValueError(f"weighted_words makes n(n+1)/2 shingles per word: use a word n-gram of at most "
                             f"{MAX_WEIGHTED_WORD_NGRAM}, or weighted_words: false")
        return self

    def shingling(self) -> Shingling:
        word_n, char_n = (self.ngram, self.ngram) if self.ngram else (self.word_ngram, self.char_ngram)
        return Shingling(word_n, char_n, self.weighted_words)

    def lsh_shape(self) -> tuple[int, int]:
        from curate.dedup.lsh import optimal_param

        if self.bands is not None:
            return self.bands, self.rows
        return optimal_param(self.threshold, self.num_perm, 1 - self.false_negative_weight,
                             self.false_negative_weight)

    def input_files(self) -> list[Path]:
        """Files this stage reads besides its input records (the eval sets), for cache fingerprints."""
        files: list[Path] = []
        for path in self.against:
            files += sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        return files
