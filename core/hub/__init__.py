"""Weights: the manifest, finding, verifying and fetching files (huggingface-hub, bounded and quiet), hf:// refs."""
