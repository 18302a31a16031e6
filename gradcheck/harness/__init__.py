"""The harness: requests, layers and adapters, guarded calls, check_layer, fuzzing, corpora, VJPs.

Also the one renderer of outcomes (outcome.py), so that every face prints the same report.
"""
