"""Geometry: specs (ConvSpec, ConvTransposeSpec, PoolSpec), output shapes, problems, support claims.

The lowest stage above the base: nothing here knows a formula.
"""
