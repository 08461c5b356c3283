"""One environment's life: plan, deploy, seed, expire, clean up."""
