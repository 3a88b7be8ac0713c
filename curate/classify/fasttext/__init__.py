"""fastText inference without fastText: the .bin model format, the numba scoring kernels, the predictor and the
tokeniser that prepares text the way fastText saw it in training."""
