"""Learning between rounds: training sets, objectives, packing and the LoRA trainer.

The trainer, packing and objectives modules import torch (worker code only); examples, config,
selectors, manifests and runs do not.
"""
