"""Reusable networks: VGG feature taps and the decoders that invert them."""
