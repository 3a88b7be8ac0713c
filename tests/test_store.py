import polars as pl
import pytest

from curate import records
from curate.io import InputError, read_records, write_records
from curate.store import REDACTED, TMP_MARKER, TMP_PREFIX, RunStore, redact, write_shards


def sample(n=5):
    return records.conform(pl.DataFrame({
        "id": [f"id{i}" for i in range(n)], "source": ["s"] * n, "source_id": [str(i) for i in range(n)],
        "lang": ["en"] * n, "prompt": [f"prompt {i}" for i in range(n)],
        "categories": [["S03"]] * n, "meta": ['{"collect": {"x": 1}}'] * n}))


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.csv", "out.parquet", "shards"])
def test_records_round_trip_every_format(tmp_path, name):
    df = sample()
    write_records(df, tmp_path / name)
    back = read_records(tmp_path / name)
    assert back.columns == records.COLUMNS
    assert back.select("id", "prompt", "categories", "meta").equals(df.select("id", "prompt", "categories", "meta"))


@pytest.mark.parametrize("rows", [
    [{"id": "a", "prompt": "你好"}, {"id": "b", "prompt": None, "categories": ["S01"]}],  # fast path
    [{"id": "a", "prompt": "x", "categories": []}, {"id": "b", "prompt": "y", "categories": []}],  # list of nothing
    [{"id": "a", "meta": {"k": [1, "二"]}}, {"id": "b", "meta": "{}"}],  # nested meta: per-line reader
    [{"id": 1, "prompt": "x"}, {"id": "b", "answer_judge_score": 3}],  # values that need conforming
])
def test_json_lines_read_the_same_by_the_fast_and_the_per_line_reader(tmp_path, rows):
    import gzip
    import json

    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" + ("\n" if i == 0 else "") for i, r in enumerate(rows))
    (tmp_path / "x.jsonl").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "x.jsonl.gz", "wt", encoding="utf-8") as fh:  # .gz always takes the per-line path
        fh.write(text)
    fast, per_line = read_records(tmp_path / "x.jsonl"), read_records(tmp_path / "x.jsonl.gz")
    assert fast.height == len(rows)
    assert fast.equals(per_line)


def test_reading_a_missing_or_unknown_file_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match="unsupported file type"):
        read_records(tmp_path / "x.txt")
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\n{oops\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: invalid JSON"):
        read_records(tmp_path / "bad.jsonl")


def test_stage_write_is_atomic_and_manifest_marks_completion(tmp_path):
    store = RunStore(tmp_path / "run")
    fp = store.write_stage(1, "collect", sample(), {"stage": "collect", "rows_out": 5})
    manifest = store.manifest(1, "collect")
    assert manifest["output_fingerprint"] == fp and manifest["rows_out"] == 5
    assert store.read_stage(1, "collect").height == 5
    # A leftover temp folder from a killed run (curate's prefix and marker) is removed when the next run starts.
    stale = tmp_path / "run" / f"{TMP_PREFIX}dead0000-02-dedup"
    stale.mkdir()
    (stale / TMP_MARKER).write_text("1\n")
    (stale / "part-00000.parquet").write_bytes(b"garbage")
    with RunStore(tmp_path / "run").locked():
        assert not stale.exists()


def test_redaction_hides_secrets_but_keeps_env_var_names():
    config = {"synthesize": {"api_key": "sk-secret", "api_key_env": "OPENAI_API_KEY", "nested": [{"token": "t"}]},
              "name": "x"}
    out = redact(config)
    assert out["synthesize"]["api_key"] == REDACTED
    assert out["synthesize"]["api_key_env"] == "OPENAI_API_KEY"
    assert out["synthesize"]["nested"][0]["token"] == REDACTED
    assert out["name"] == "x"
