"""The data-sharing service (共享数据服务): campus systems read the shared base data over HTTP.

A layer beside ``pipeline``: it stands on ``core`` only (published snapshots, declarations,
settings) and reads nothing the pipeline is writing.
"""
