"""collect never crashes on hostile input, and every non-blank input line becomes a record or a quarantined line."""
import json
import resource
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate import records
from curate.collect import CollectOptions, run
from curate.collect.readers import MAX_LINE_BYTES
from curate.stage import StageContext
from curate.store import QuarantineBuffer

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def collect_file(folder: Path, name: str, data: bytes, **spec):
    path = folder / name
    path.write_bytes(data)
    quarantine = QuarantineBuffer("collect")
    ctx = StageContext(stage="collect", work_dir=folder, quarantine=quarantine, log=lambda m: None)
    opts = CollectOptions.model_validate({"sources": [{"name": "h", "path": str(path), "license": "MIT", **spec}]})
    out = run(records.empty(), opts, ctx)
    records.validate(out)
    return out, quarantine.rows


def non_blank_lines(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                           max_leaves=12)
line_strategy = st.one_of(
    st.binary(max_size=200),  # random bytes
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(lambda t: json.dumps({"prompt": t}, ensure_ascii=False).encode(), st.text(max_size=80)),
    st.builds(lambda t: json.dumps({"prompt": t}, ensure_ascii=False).encode("gb18030", errors="ignore"),
              st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x4FFF), min_size=1, max_size=20)),
    st.builds(lambda t: json.dumps({"prompt": t}).encode() + b"\x00", st.text(max_size=20)),
)


@FAST
@given(lines=st.lists(line_strategy, max_size=25))
def test_jsonl_every_line_is_a_record_or_quarantined(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("h")
    data = b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n"
    out, quarantined = collect_file(folder, "x.jsonl", data)
    assert out.height + len(quarantined) == non_blank_lines(data)
    assert all(q["reason"] and q["location"].startswith("x.jsonl:") for q in quarantined)


def test_a_first_line_that_starts_like_gzip_is_read_as_text(tmp_path):
    """Found by the test above: a line starting with gzip's two magic bytes made the whole file one bad gzip."""
    data = b'\x1f\x8b\n{"prompt": "a real question"}\n\x00\n'
    out, quarantined = collect_file(tmp_path, "x.jsonl", data)
    assert out["prompt"].to_list() == ["a real question"] and len(quarantined) == 2


@FAST
@given(text=st.text(alphabet=st.sampled_from(list('ab,"\n\r\x00 中文')), max_size=300))
def test_csv_with_quotes_newlines_and_nul_never_crashes(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("c")
    out, quarantined = collect_file(folder, "x.csv", ("prompt,label\n" + text).encode("utf-8"),
                                    fields={"prompt": "prompt", "labels": ["label"]})
    assert all(q["reason"] for q in quarantined)
    assert not out["prompt"].str.contains("\x00").any()


@FAST
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_any_format_never_crash(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("b")
    for name in ("x.json", "x.csv", "x.parquet", "x.jsonl.gz"):
        out, quarantined = collect_file(folder, name, data)
        assert out.height >= 0 and all(q["reason"] for q in quarantined)


def test_deeply_nested_json_is_quarantined(tmp_path):
    data = b"[" * 100_000 + b"]" * 100_000 + b"\n" + b'{"prompt": "' + b"{" * 50 + b'"}\n'
    out, quarantined = collect_file(tmp_path, "deep.jsonl", data)
    assert out.height == 1
    assert quarantined[0]["reason"] in ("invalid JSON: nested too deeply", "invalid JSON: expected an object, got list")


def test_over_long_single_line_is_quarantined_with_bounded_memory(tmp_path):
    big = b'{"prompt": "' + b"a" * (MAX_LINE_BYTES * 3) + b'"}\n{"prompt": "after the long line"}\n'
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out, quarantined = collect_file(tmp_path, "long.jsonl", big)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert out["prompt"].to_list() == ["after the long line"]
    assert quarantined[0]["reason"].startswith("line too long")
    assert len(quarantined[0]["raw"] or "") <= 2100  # quarantine keeps a preview, not the whole line
    assert grown_mb < 200, f"peak memory grew by {grown_mb:.0f} MB reading a {len(big) >> 20} MB line"


def test_empty_file_and_mixed_encodings(tmp_path):
    out, quarantined = collect_file(tmp_path, "empty.jsonl", b"")
    assert out.height == 0 and not quarantined
    mixed = ('{"prompt": "utf8 中文"}\n'.encode() + '{"prompt": "gbk 中文"}\n'.encode("gbk") +
             '{"prompt": "latin1 caf\xe9"}\n'.encode("latin-1"))
    out, quarantined = collect_file(tmp_path, "mixed.jsonl", mixed)
    assert out["prompt"].to_list()[:2] == ["utf8 中文", "gbk 中文"]
    assert out.height + len(quarantined) == 3


def test_directory_given_as_a_file_path_is_read_as_a_folder(tmp_path):
    folder = tmp_path / "looks_like_a_file.jsonl"
    folder.mkdir()
    (folder / "inner.jsonl").write_text('{"prompt": "inside"}\n')
    quarantine = QuarantineBuffer("collect")
    ctx = StageContext(stage="collect", work_dir=tmp_path, quarantine=quarantine, log=lambda m: None)
    opts = CollectOptions.model_validate({"sources": [{"name": "d", "path": str(folder), "license": "MIT"}]})
    assert run(records.empty(), opts, ctx)["prompt"].to_list() == ["inside"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 80])
def test_source_names_cannot_escape_or_be_odd(name):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="source name|name"):
        CollectOptions.model_validate({"sources": [{"name": name, "path": "/", "license": "MIT"}]})
