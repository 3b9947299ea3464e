"""Metrics and verdicts: what a frame pair, a stage and a run measure (pixel metrics, the SSIM
kernel, latency summaries), the tolerance profiles that judge them, and the results.json schema
that records them.
"""
