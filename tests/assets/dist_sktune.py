"""`selfalign sk-tune` under accelerate (used by tests/stages/test_align_distributed.py)."""
import sys

import torch

from selfalign.cli import main

if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main(["sk-tune", *sys.argv[1:]]))
