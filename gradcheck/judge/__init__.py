"""The judge: derived rounding bounds, comparisons of analytic gradients with witnesses, results.

The only stage that brings formulas and witnesses together.
"""
