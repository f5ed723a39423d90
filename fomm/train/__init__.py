"""Training FOMM: data sets (:mod:`fomm.train.data`), data preparation (:mod:`fomm.train.prepare`), losses,
the trainer and evaluation.

Nothing is imported here: ``import fomm`` never imports this package, and each submodule imports its own
optional dependencies (numpy, OpenCV, PyAV) only when a function needs them.
"""
