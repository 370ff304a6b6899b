"""Colorizing films: reading and writing them (`io`, `ycbcr`), motion (`flow`), the temporal filter
(`deflicker`), temporal metrics (`temporal_metrics`) and the streaming pipeline (`colorize`).

Needs the ``video`` extra (PyAV, OpenCV): ``pip install -e ".[video]"``.
"""
