"""Sources and sinks: video files, episode manifests, parquet, reports (LeRobot and bags elsewhere)."""
