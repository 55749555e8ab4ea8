"""Learning between rounds: training sets, objectives, packing and the LoRA trainer (worker code: imports torch)."""  # noqa: E501
