"""Witnesses: independent evidence computed from a forward and the data only.

Finite differences (differences.py, evaluations.py, compressed.py) and the Fourier identity
(fourier.py).  A witness never imports a backward formula; bounds reach it as arguments.
"""
