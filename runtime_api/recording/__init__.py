"""Show-day recording: the Parquet archive of bars and the LLM exchange log."""
