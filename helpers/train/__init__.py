"""Training: the one LoRA + SFT recipe, training and merging with it, and AutoTrain driven in its
own environment."""
