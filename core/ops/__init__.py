"""Stateless maths on tensors (kornia style: plain functions, modules only where a network needs one)."""
