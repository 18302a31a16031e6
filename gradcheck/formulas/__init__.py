"""Formulas: the reference forward and analytic backward of each family, written as the math.

Convolution (conv.py), transposed convolution (conv_transpose.py), pooling (pool.py).
"""
