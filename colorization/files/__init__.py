"""Files and downloads: the one atomic writer, the one photo decoder, weight files read strictly, downloads."""
