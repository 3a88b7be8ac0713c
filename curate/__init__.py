"""curate: build bilingual safety training corpora for reasoning LLMs."""
__version__ = "0.1.0"
