"""Benchmarks: the original notebook's pipeline against lora_core, and lora_core's LoRA against PEFT's.

Run `python -m benchmarks` (about 10 minutes on a 2-core CPU) or `python -m benchmarks --quick`.
"""
