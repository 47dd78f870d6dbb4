"""Sample quality for any dataset (``sde-edge eval-samples``): feature extractors (clean-fid's
Inception-v3, or a small classifier for the labelled embedded sets), distances in their feature
space (FD, KID, precision/recall) and the network-free sliced Wasserstein distance per
Laplacian-pyramid band."""
