"""What the two trainers share (``align``: TRL's DPO; ``sk-tune``: single-token DPO): the LoRA kit (``lora``),
TRL arguments (``trl_args``), resumable checkpoints (``checkpoint``) and portable adapter folders (``adapters``)."""
