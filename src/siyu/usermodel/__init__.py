"""The user model's moving part: the pipeline that turns events into aggregates, scores, tags and segments."""
