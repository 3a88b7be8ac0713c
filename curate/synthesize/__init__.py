"""synthesize: chain-of-thought refusals, safe completions and helpful answers via any OpenAI-compatible API."""
from curate.stage import Stage
from curate.synthesize.options import SynthesizeOptions
from curate.synthesize.stage import FACTS, run

STAGE = Stage(
    name="synthesize",
    Options=SynthesizeOptions,
    run=run,
    reads=("id", "prompt", "lang", "response", "response_kind", "prompt_harmful", "categories", "drop_reason", "role"),
    writes=("response", "reasoning", "response_kind", "drop_reason", *FACTS, "meta"),
    help="Write policy-grounded reasoning and answers (refusal / safe completion / helpful) for labelled prompts "
         "through an OpenAI-compatible endpoint, with quality filters and an optional LLM judge.",
)

__all__ = ["STAGE", "SynthesizeOptions", "run"]
