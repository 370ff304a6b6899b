"""The jobs behind train.py and evaluate.py: run directories, checkpoints, callbacks, loggers, reports."""
