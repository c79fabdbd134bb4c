"""Extraction from the source systems into the append-only landing zone.

One generic SQL extractor serves every database; what to extract is declared per system in
``schemas/sources/<system>.yml``.
"""
