"""The daily bet board: virtual points on which lobby trader has the best day (no money)."""
