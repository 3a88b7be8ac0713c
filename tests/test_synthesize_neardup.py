"""synthesize's near-duplicate answer filter runs on dedup's MinHash (shingles, LSH band keys, exact Jaccard);
datasketch is the oracle for the similarities it acts on."""
from __future__ import annotations

import numpy as np
import pytest

from curate.synthesize.neardup import SHINGLING, AnswerIndex

EN = ("I can't help with making a weapon at home. If you are worried about your safety, please contact local "
      "emergency services or a trusted person nearby; they can help you find a safer way through this.")
ZH = "我不能帮助你在家里制作武器。如果你担心自己的安全，请联系当地的紧急服务或你信任的人，他们可以帮助你找到更安全的办法。"
OTHER = "To bake bread, mix flour, water, salt and yeast, knead the dough for ten minutes and let it rise for an hour."


def _variants():
    return {
        "en_copy": (EN, EN.replace("local", "the local")),
        "en_tail": (EN, EN + " Take care."),
        "zh_copy": (ZH, ZH.replace("当地的", "本地的")),
        "en_other": (EN, OTHER),
        "zh_other": (ZH, "烤面包时，把面粉、水、盐和酵母混合，揉面十分钟，然后让面团发酵一个小时。"),
    }


def test_similarity_matches_datasketch_estimate():
    datasketch = pytest.importorskip("datasketch")
    from curate.dedup.shingles import shingle, unique_per_row

    for name, (a, b) in _variants().items():
        sh = unique_per_row(shingle([a, b], SHINGLING))
        exact = AnswerIndex._similarity(sh.row(0), sh.row(1))
        sets = [set(sh.row(i).tolist()) for i in (0, 1)]
        assert exact == pytest.approx(len(sets[0] & sets[1]) / len(sets[0] | sets[1]))
        hashes = []
        for values in sets:
            m = datasketch.MinHash(num_perm=256, seed=1)
            m.update_batch([int(v).to_bytes(8, "little") for v in values])
            hashes.append(m)
        assert abs(hashes[0].jaccard(hashes[1]) - exact) < 0.12, name  # 256 permutations: std ~0.03


def test_index_keeps_the_first_of_a_group_and_unrelated_answers():
    index = AnswerIndex(0.7)
    index.add("corpus-en", EN)
    index.add("corpus-zh", ZH)
    found = {name: index.add_if_new(name, b) for name, (_, b) in _variants().items()}
    assert found == {"en_copy": "corpus-en", "en_tail": "corpus-en", "zh_copy": "corpus-zh",
                     "en_other": None, "zh_other": None}
    assert index.add_if_new("again", OTHER) == "en_other"  # indexed when it was new


def test_lsh_finds_every_planted_near_duplicate():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    docs = [" ".join(rng.choice(words, 60)) for _ in range(200)]
    index = AnswerIndex(0.8)
    for i, doc in enumerate(docs):
        index.add(f"d{i}", doc)
    hits = 0
    for i, doc in enumerate(docs[:100]):
        tokens = doc.split()
        tokens[30] = "changed"  # one word of 60: Jaccard of word 3-grams ~0.9
        hits += index.add_if_new(f"n{i}", " ".join(tokens)) == f"d{i}"
    assert hits >= 97
