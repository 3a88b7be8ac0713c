"""curate eval: what a corpus does to a model, per harm dimension and language, with confidence intervals.

    from curate.eval import EvalOptions, run_eval, compare
    result = run_eval(EvalOptions(suite="suite.yaml", out="runs/eval-a", base_url=..., model=...))
    result.summary["defence_rate"]  # {"rate", "low", "high", "n", ...}
"""
from curate.eval.compare import compare
from curate.eval.options import EvalOptions
from curate.eval.run import EvalResult, run_eval
from curate.eval.suite import load_suite

__all__ = ["EvalOptions", "EvalResult", "compare", "load_suite", "run_eval"]
