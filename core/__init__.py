"""Brushstream's core library: images, weights, networks, ops and style methods. Knows nothing of hosts."""
