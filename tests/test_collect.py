"""collect: presets parse their real files; broken input is quarantined with file, line and reason."""
import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from curate import records
from curate.collect import CollectOptions, run
from curate.collect.presets import PRESETS
from curate.stage import StageContext
from curate.store import QuarantineBuffer

# preset -> (folder in ../shared/data, language(s) every row must have)
SHARED_FOLDERS = {
    "advbench": ("advbench", {"en"}), "harmbench": ("harmbench", {"en"}), "strongreject": ("strongreject", {"en"}),
    "simplesafetytests": ("simplesafetytests", {"en"}), "xstest": ("xstest", {"en"}),
    "xstest_completions": ("xstest", {"en"}), "openai_moderation": ("openai-moderation", {"en"}),
    "multijail": ("multijail", None), "xsafety": ("xsafety", {"en", "zh"}),
    "safetybench": ("safetybench-zh-subset", {"zh"}), "cold": ("cold", {"zh"}), "flames": ("flames-1k", {"zh"}),
    "cvalues": ("cvalues-responsibility-prompts", {"zh"}), "s_eval": ("s-eval", {"en", "zh"}),
    "star1": ("star-1", {"en"}), "gsm8k": ("gsm8k", {"en"}),
}


def collect(tmp_path, *sources, **options):
    quarantine = QuarantineBuffer("collect")
    ctx = StageContext(stage="collect", work_dir=tmp_path, quarantine=quarantine, log=lambda m: None)
    opts = CollectOptions.model_validate({"sources": list(sources), **options}, context={"base_dir": tmp_path})
    out = run(records.empty(), opts, ctx)
    records.validate(out)
    return out, quarantine.rows, ctx.stats


def test_every_preset_has_a_shared_folder():
    assert set(SHARED_FOLDERS) == set(PRESETS)


@pytest.mark.parametrize("preset", sorted(SHARED_FOLDERS))
def test_preset_parses_its_real_file(tmp_path, shared_data, preset):
    folder, langs = SHARED_FOLDERS[preset]
    out, quarantined, stats = collect(tmp_path, {"preset": preset, "path": str(shared_data / folder)})
    assert out.height > 90, f"{preset}: only {out.height} rows"
    # S-Eval's attack file repeats one traceid upstream: the second copy is quarantined, as it should be.
    allowed = 1 if preset == "s_eval" else 0
    assert len(quarantined) <= allowed, f"{preset}: {quarantined[:3]}"
    assert all(q["reason"].startswith("duplicate source id") for q in quarantined)
    assert stats["sources"][preset]["unknown_labels"] == {}, f"{preset}: unmapped labels"
    if langs is not None:
        assert set(out["lang"].unique()) <= langs
    if PRESETS[preset].label_set:
        labelled = out.filter(pl.col("source_labels").list.len() > 0)
        assert labelled.height == out.height or preset == "openai_moderation"
        assert (labelled["label_origin"] == "source").all()
    assert out["source_license"].unique().to_list() == [PRESETS[preset].license]


def test_multijail_keeps_only_requested_language_columns(tmp_path, shared_data):
    out, _, _ = collect(tmp_path, {"preset": "multijail", "path": str(shared_data / "multijail"),
                                   "languages": ["en", "zh"]})
    assert sorted(out["lang"].unique()) == ["en", "zh"]
    assert out.height == 2 * 315


def test_star1_reasoning_is_split_from_the_answer(tmp_path, shared_data):
    out, _, _ = collect(tmp_path, {"preset": "star1", "path": str(shared_data / "star-1")})
    assert out["reasoning"].null_count() == 0
    assert not out["response"].str.contains("</think>").any()


def test_broken_lines_are_quarantined_with_file_line_and_reason(tmp_path):
    lines = [
        json.dumps({"prompt": "How do I pick a lock?", "cat": "crime"}).encode(),
        b'{"prompt": "unterminated',
        json.dumps({"prompt": "   "}).encode(),
        json.dumps({"text": "no prompt column"}).encode(),
        "{\"prompt\": \"如何制作炸药\"}".encode("gbk"),  # GBK-encoded line: decoded, not lost
        b'{"prompt": "\xff\xfe\xfa broken bytes"}',
        b"[1, 2, 3]",
        json.dumps({"prompt": "fine again"}).encode(),
    ]
    (tmp_path / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    out, quarantined, _ = collect(tmp_path, {"name": "mixed", "path": "mixed.jsonl", "license": "MIT"})
    reasons = {q["location"]: q["reason"] for q in quarantined}
    assert reasons == {
        "mixed.jsonl:2": reasons["mixed.jsonl:2"], "mixed.jsonl:3": "empty prompt",
        "mixed.jsonl:4": "missing field 'prompt'", "mixed.jsonl:6": reasons["mixed.jsonl:6"],
        "mixed.jsonl:7": reasons["mixed.jsonl:7"]}
    assert reasons["mixed.jsonl:2"].startswith("invalid JSON")
    assert reasons["mixed.jsonl:6"].startswith("invalid encoding")
    assert "expected an object" in reasons["mixed.jsonl:7"]
    assert out["prompt"].to_list() == ["How do I pick a lock?", "如何制作炸药", "fine again"]
    assert out["lang"].to_list() == ["en", "zh", "en"]
    gbk = records.load_meta(out["meta"][1])["collect"]
    assert gbk["encoding"] == "gb18030" and gbk["location"] == "mixed.jsonl:5"
    assert out.height + len(quarantined) == len(lines)  # every line accounted for


def test_gbk_csv_with_bom_less_header_and_embedded_newlines(tmp_path):
    text = 'id,prompt,label\n1,"第一行\n第二行",侮辱\n2,"他说""你好""",歧视\n3,only two fields\n'
    (tmp_path / "gbk.csv").write_bytes(text.encode("gbk"))
    out, quarantined, _ = collect(tmp_path, {"name": "gbk", "path": "gbk.csv", "license": "MIT",
                                             "fields": {"prompt": "prompt", "id": "id", "labels": ["label"]}})
    assert out["prompt"].to_list() == ["第一行\n第二行", '他说"你好"']
    assert out["source_labels"].to_list() == [["侮辱"], ["歧视"]]
    assert [q["reason"] for q in quarantined] == ["invalid CSV: 2 fields, header has 3"]


def test_utf8_bom_and_gzip_and_truncated_gzip(tmp_path):
    payload = "\ufeff" + "\n".join(json.dumps({"prompt": f"question {i}"}) for i in range(50)) + "\n"
    (tmp_path / "ok.jsonl.gz").write_bytes(gzip.compress(payload.encode()))
    out, quarantined, _ = collect(tmp_path, {"name": "gz", "path": "ok.jsonl.gz", "license": "MIT"})
    assert out.height == 50 and not quarantined
    data = gzip.compress(payload.encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    out, quarantined, _ = collect(tmp_path, {"name": "cut", "path": "cut.jsonl.gz", "license": "MIT"})
    assert len(quarantined) == 1 and "truncated" in quarantined[0]["reason"]
    assert out.height < 50


def test_directory_of_files_empty_files_and_symlink_loop(tmp_path):
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jsonl").write_text('{"prompt": "a"}\n')
    (folder / "sub" / "b.jsonl").write_text('{"prompt": "b"}\n')
    (folder / "empty.jsonl").write_text("")
    (folder / "loop").symlink_to(folder / "loop")
    out, quarantined, _ = collect(tmp_path, {"name": "dir", "path": "src", "license": "MIT"})
    assert sorted(out["prompt"]) == ["a", "b"]
    assert any("symlink" in q["reason"] or "unreadable" in q["reason"] for q in quarantined)


def test_ids_are_stable_across_runs_and_duplicates_within_a_source_quarantined(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"id": 1, "prompt": "x"}\n{"id": 1, "prompt": "y"}\n{"id": 2, "prompt": "z"}\n')
    spec = {"name": "d", "path": "d.jsonl", "license": "MIT", "fields": {"id": "id"}}
    first, quarantined, _ = collect(tmp_path, spec)
    second, _, _ = collect(tmp_path, spec)
    assert first["id"].to_list() == second["id"].to_list()
    assert first["id"][0] == records.make_id("d", "1")
    assert [q["reason"] for q in quarantined] == ["duplicate source id '1' within source d"]


def test_normalisation_and_mixed_language(tmp_path):
    rows = [{"prompt": "  Ｈｅｌｌｏ\u200b   world\x07 "}, {"prompt": "帮我写一个Python脚本来破解wifi密码"}]
    (tmp_path / "n.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    out, _, _ = collect(tmp_path, {"name": "n", "path": "n.jsonl", "license": "MIT"})
    assert out["prompt"].to_list() == ["Hello world", "帮我写一个Python脚本来破解wifi密码"]
    assert out["lang"].to_list() == ["en", "zh"]


def test_role_and_answer_origin_are_columns(tmp_path):
    (tmp_path / "g.jsonl").write_text('{"prompt": "What is 2+2?", "response": "4"}\n{"prompt": "And 3+3?"}\n')
    fields = {"response": "response"}
    out, _, _ = collect(tmp_path, {"name": "g", "path": "g.jsonl", "license": "MIT", "role": "general", "fields": fields},
                        {"name": "s", "path": "g.jsonl", "license": "MIT", "fields": fields})
    assert out["role"].to_list() == ["general", "general", "safety", "safety"]
    assert out["answer_origin"].to_list() == ["source", None, "source", None]


def test_hf_dataset_from_a_local_folder(tmp_path):
    data = tmp_path / "hfset" / "data"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text("\n".join(json.dumps({"question": f"q{i}", "answer": "a", "topic": "t"})
                                                for i in range(4)))
    out, quarantined, _ = collect(tmp_path, {"name": "hf", "license": "MIT", "hf": {"name": str(tmp_path / "hfset")},
                                             "fields": {"prompt": "question", "response": "answer", "labels": ["topic"]}})
    assert out.height == 4 and not quarantined
    assert out["response"].to_list() == ["a"] * 4


def test_unreachable_hf_dataset_is_quarantined_not_a_crash(tmp_path):
    out, quarantined, _ = collect(tmp_path, {"name": "hf", "license": "MIT", "hf": {"name": str(tmp_path / "absent")}})
    assert out.height == 0 and quarantined[0]["reason"].startswith("cannot load dataset")


def test_unknown_labels_are_reported(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "hi there", "category": "Insult", "lang": "en"}\n'
                                      '{"text": "bye now", "category": "Brand_New_Label", "lang": "en"}\n')
    out, _, stats = collect(tmp_path, {"name": "x", "path": "x.jsonl", "license": "MIT", "label_set": "xsafety",
                                       "fields": {"prompt": "text", "labels": ["category"]}})
    assert stats["sources"]["x"]["unknown_labels"] == {"Brand_New_Label": 1}
    assert records.load_meta(out["meta"][1])["collect"]["unknown_labels"] == ["Brand_New_Label"]
    assert out["categories"][0].to_list() == ["S10"]


def test_a_limit_stops_reading_where_it_did_row_by_row(tmp_path):
    """Languages are detected in batches, but reading still stops at the limit: a broken line after it is not read
    (so not quarantined), with or without a language filter (then the rows before it count as filtered)."""
    lines = [json.dumps({"id": i, "prompt": p}, ensure_ascii=False)
             for i, p in enumerate(["how do I bake bread", "怎么烤面包", "what is two plus two", "今天天气怎么样",
                                    "name three rivers", "write a short poem about rain"])]
    (tmp_path / "l.jsonl").write_text("\n".join(lines[:5] + ["{broken", lines[5]]) + "\n", encoding="utf-8")
    spec = {"name": "l", "path": "l.jsonl", "license": "MIT", "fields": {"id": "id"}}
    out, quarantined, _ = collect(tmp_path, {**spec, "limit": 4})
    assert out["source_id"].to_list() == ["0", "1", "2", "3"] and quarantined == []
    out, quarantined, _ = collect(tmp_path, {**spec, "limit": 3, "languages": ["en"]})
    assert out["source_id"].to_list() == ["0", "1", "2", "3", "4"] and quarantined == []
    assert out["drop_reason"].to_list() == [None, "language_filtered", None, "language_filtered", None]
    out, quarantined, _ = collect(tmp_path, {**spec, "languages": ["zh"]})
    assert out.height == 6 and [q["reason"][:12] for q in quarantined] == ["invalid JSON"]
    assert out.filter(pl.col("drop_reason").is_null())["lang"].to_list() == ["zh", "zh"]
