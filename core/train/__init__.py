"""Training: the runner, the Stage interface, trainers and callbacks."""
