"""Does the embedded model's hidden state know which prompts are harmful? A linear probe, measured (issue 21).

    python benchmarks/flag_probe.py [--scale 1.0] [--out results.json]

The 1.5B model is a poor harmful-flag judge when asked (flag_judge.py), but a model's internal state often
separates harmful from harmless requests better than its answers do. This script starts the embedded model as an
embedding-only llama-server (``--embeddings --pooling last``: the final hidden state of the last token, after the
chat template's assistant header, where the model decides how to answer), embeds chat-templated prompts, fits an
L2-regularised logistic regression on sources the test never sees, and scores the held-out test the way
flag_judge.py does: S-Eval's harmful prompts against benign look-alikes (XSTest safe prompts in English, CValues in
Chinese), ROC AUC and the recall when at most 10% of the look-alikes are flagged. XSTest's own harmful and safe
prompts are scored too. The shipped classifier's score on the same test rows is printed for comparison (it *was*
trained on XSTest and CValues, so its figures there are optimistic).

Train: harmful rows of AdvBench, HarmBench, StrongREJECT, STAR-1, MultiJail, SimpleSafetyTests, XSafety, OpenAI
moderation, COLD and FLAMES; benign rows of OpenAI moderation, GSM8K and COLD (seed 1; ``--scale`` multiplies
every count). About 2,000 prompts take 30 minutes on 2 cores. Needs ../shared/data.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import shared_corpus  # noqa: E402
from flag_judge import LOOK_ALIKES, recall_at, roc_auc  # noqa: E402  (the test pairs the judge is measured on)

# (source, lang, harmful, rows)
TRAIN = [("advbench", "en", True, 60), ("harmbench", "en", True, 60), ("strongreject", "en", True, 50),
         ("star1", "en", True, 70), ("multijail", "en", True, 30), ("simplesafetytests", "en", True, 30),
         ("xsafety", "en", True, 50), ("openai_moderation", "en", True, 50), ("openai_moderation", "en", False, 250),
         ("gsm8k", "en", False, 60), ("cold", "zh", True, 120), ("flames", "zh", True, 100),
         ("multijail", "zh", True, 40), ("xsafety", "zh", True, 60), ("cold", "zh", False, 300)]
TEST = [("s_eval", "en", True, 150), ("xstest", "en", False, 150), ("s_eval", "zh", True, 150),
        ("cvalues", "zh", False, 150), ("xstest", "en", True, 100)]
CHAT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{prompt}<|im_end|>\n"
        "<|im_start|>assistant\n")  # Qwen2.5's template: the state read is the one the answer starts from
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1)


def sample(corpus: pl.DataFrame, scale: float) -> pl.DataFrame:
    kept = corpus.filter(pl.col("drop_reason").is_null() & pl.col("prompt_harmful").is_not_null())
    parts = []
    for source, lang, harmful, rows in TRAIN + TEST:
        part = kept.filter((pl.col("source") == source) & (pl.col("lang") == lang) & (pl.col("prompt_harmful") == harmful))
        parts.append(part.sample(min(part.height, round(rows * scale)), seed=1)
                     .select("id", "source", "lang", "prompt", "prompt_harmful"))
    return pl.concat(parts).unique("id", maintain_order=True)


def embed(prompts: list[str], log) -> np.ndarray:
    """Last-token hidden states from the embedded model, started here and stopped by PID."""
    import openai

    from curate.llm.local.endpoint import prepare
    from curate.llm.local.server import start_server, stop_pid

    binary, model_path = prepare(log=log)
    info = start_server(binary, model_path, "probe", log_path=Path(tempfile.mkdtemp()) / "llama-server.log",
                        extra_args=("--embeddings", "--pooling", "last"))
    try:
        client = openai.OpenAI(base_url=info.base_url, api_key=info.api_key)
        texts = [CHAT.format(prompt=p[:600]) for p in prompts]
        batches = [texts[i:i + 8] for i in range(0, len(texts), 8)]
        one = lambda batch: [d.embedding for d in client.embeddings.create(model="probe", input=batch).data]  # noqa: E731
        with ThreadPoolExecutor(info.slots) as pool:
            return np.asarray([v for vectors in pool.map(one, batches) for v in vectors], dtype=np.float64)
    finally:
        stop_pid(info.pid)


def fit_logistic(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Weights (last: bias) minimising mean log-loss + lam * |w|^2."""
    from scipy.optimize import minimize

    def loss(p):
        s = x @ p[:-1] + p[-1]
        prob = 1 / (1 + np.exp(-s))
        value = -np.mean(y * np.log(prob + 1e-12) + (1 - y) * np.log(1 - prob + 1e-12)) + lam * p[:-1] @ p[:-1]
        grad = x.T @ (prob - y) / len(y)
        return value, np.append(grad + 2 * lam * p[:-1], np.mean(prob - y))

    return minimize(loss, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x


def scores_report(rows: pl.DataFrame, score: np.ndarray) -> dict:
    out = {}
    truth, lang, source = rows["prompt_harmful"].to_numpy(), rows["lang"].to_numpy(), rows["source"].to_numpy()
    for code, benign in LOOK_ALIKES.items():
        m = (lang == code) & ((source == "s_eval") | ((source == benign) & ~truth))
        out[code] = {"auc": roc_auc(list(truth[m]), list(score[m])), "recall_at_10pct": recall_at(list(truth[m]), list(score[m]))}
    m = source == "xstest"
    out["xstest_harmful_vs_safe_auc"] = roc_auc(list(truth[m]), list(score[m]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sampled count (0.05: a smoke run)")
    ap.add_argument("--corpus", type=Path, default=shared_corpus.REPO / ".cache" / "bench_corpus.parquet")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    from curate.classify.evaluate import predictions
    from curate.classify.model import ClassifierModel, default_model_dir

    rows = sample(shared_corpus.cached(list(shared_corpus.PRESET_DIRS), args.corpus, log=log), args.scale)
    test = rows["source"].is_in([s for s, *_ in TEST]).to_numpy()
    started = time.monotonic()
    x = embed(rows["prompt"].to_list(), log)
    seconds = time.monotonic() - started
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mean, std = x[~test].mean(0), x[~test].std(0) + 1e-6
    z, y = (x - mean) / std, rows["prompt_harmful"].to_numpy().astype(float)
    result = {"rows": rows.height, "train_rows": int((~test).sum()), "embed_seconds": round(seconds, 1), "probe": {}}
    for lam in LAMBDAS:
        w = fit_logistic(z[~test], y[~test], lam)
        result["probe"][str(lam)] = scores_report(rows, z @ w[:-1] + w[-1])
    local = predictions(ClassifierModel.load(default_model_dir()),
                        rows.with_columns(pl.lit(None, pl.Utf8).alias("target")), band=0.3)
    local = rows.select("id").join(local, on="id", how="left", maintain_order="left")
    result["local layers"] = scores_report(rows, (local["harm_score"] - local["harm_threshold"]).to_numpy())
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
