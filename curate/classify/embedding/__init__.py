"""The sentence-embedding layer of a classifier model: the multilingual encoder and the heads blended with fastText."""
