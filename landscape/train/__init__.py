"""The training engine: configuration, schedules, populations and the loop that drives them."""
