"""Training the small generator: the balanced training set drawn from simple clusters, and fine-tuning."""
