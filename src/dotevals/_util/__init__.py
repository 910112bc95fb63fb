"""What every step uses: functions imported on first call (:mod:`.lazy`) and the one
registry of named plugins and their entry points (:mod:`.registry`)."""
