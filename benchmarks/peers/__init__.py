"""Peer implementations of the benchmark's networks in other frameworks, for speed comparisons.

Each peer mirrors a Keras model exactly (weights copied from it, outputs checked
equal in tests/) and writes timing rows of ``bench_deblur.speed``'s schema into
the same results file, so frameworks are compared on one table.
"""
