"""Balance: quotas per kind x dimension x language, a capability-preserving mix, leakage-free splits.

Rows that cannot enter the mix get ``unlabelled``, ``harmful_response`` or ``pending_synthesis``; eligible rows
the quotas leave out get ``not_selected``; picked rows get ``split`` (train/test, whole
dup clusters only). See ``targets.py`` for the quota arithmetic and ``curate.kinds.record_kind`` for kinds.
"""
from curate.balance.options import BalanceOptions, load_options
from curate.balance.stage import READS, run
from curate.kinds import record_kind
from curate.stage import Stage

STAGE = Stage(
    name="balance",
    Options=BalanceOptions,
    run=run,
    reads=READS,
    writes=("split", "drop_reason"),
    streamed=lambda options: ("response",),  # of the answers only whether there is one (StageContext.derived)
    help="Select rows to meet per-dimension, language and kind quotas; report shortfalls; assign train/test splits.",
)

__all__ = ["STAGE", "BalanceOptions", "load_options", "record_kind", "run"]
