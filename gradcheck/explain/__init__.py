"""Explanations of a failed check: the mistake catalogue, structural facts, localisation, maps.

Also the Jacobian explainer behind ``gradcheck jacobian``.
"""
