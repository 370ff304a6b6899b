"""Metrics, one definition each: image metrics (`image`) and FID (`fid`)."""
