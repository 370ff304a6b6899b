"""Colour: the colour spaces a model predicts in, Zhang et al.'s quantized ab bins, and user colour hints."""
