"""Training: datasets, the resumable loop, and one recipe per trainable network."""
